#!/usr/bin/env bash
# Fuzz smoke run on the stable toolchain: every target for FUZZ_SECONDS
# (default 20) seconds, starting from the committed seeds, with the target's
# libFuzzer dictionary (fuzz/dict/targets.txt, see fuzz/dict.sh).
#
#   fuzz/smoke.sh                      # from anywhere in the repository
#   FUZZ_SECONDS=300 fuzz/smoke.sh     # longer
#   FUZZ_TARGETS="msrp_uri" fuzz/smoke.sh
#   FUZZ_RUNS=20000 FUZZ_SEED=1 fuzz/smoke.sh   # reproducible (what .ci/run does)
#
# Exits 0 when every target ran clean, 1 when one crashed (the input is in
# fuzz/artifacts/<target>/), and 0 with a SKIP line when cargo-fuzz cannot
# be installed.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FUZZ_ROOT"   # cargo fuzz finds fuzz/ from the repository root

seconds="${FUZZ_SECONDS:-20}"
targets="${FUZZ_TARGETS:-$(fuzz_all_targets | tr '\n' ' ')}"

skip() {
    fuzz_skip_banner "fuzz smoke: $*"
    exit 0
}

# A dictionary for every target, each token well formed (before the build).
fuzz_check_dicts
if ! fuzz_ensure_cargo_fuzz; then
    skip "cargo install cargo-fuzz --locked failed or timed out"
fi
echo "using $(cargo fuzz --version)"

failed=()
for target in $targets; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    cp fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    if [ -d "fuzz/regressions/$target" ]; then
        find "fuzz/regressions/$target" -type f ! -name '.*' -exec cp {} "$corpus"/ \;
    fi
    dict="$(fuzz_dict "$target")"
    budget="${seconds}s"
    [ -n "${FUZZ_RUNS:-}" ] && budget="$FUZZ_RUNS runs, seed ${FUZZ_SEED:-1}"
    echo "=== $target: $budget from $(find "$corpus" -type f | wc -l) inputs, dictionary $(fuzz_dict_parts "$target")"
    start=$SECONDS
    # -s none: no sanitizer, the only mode stable rustc accepts (see
    # /work/shared/interop/README.md, "Fuzzing on stable").
    # FUZZ_RUNS (set by .ci/run) makes the run reproducible: a fixed seed
    # and a fixed number of executions instead of a time budget, so CI
    # fails on a real regression, not on what a random walk happened to reach.
    if [ -n "${FUZZ_RUNS:-}" ]; then
        limits=(-seed="${FUZZ_SEED:-1}" -runs="$FUZZ_RUNS")
    else
        limits=(-max_total_time="$seconds")
    fi
    if cargo fuzz run -s none "$target" -- -dict="$dict" "${limits[@]}"; then
        echo "=== $target: OK ($((SECONDS - start)) s including the build)"
    else
        echo "=== $target: CRASH, see fuzz/artifacts/$target/"
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all targets ran clean"
