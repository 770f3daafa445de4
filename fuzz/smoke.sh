#!/usr/bin/env bash
# Fuzz smoke run on the stable toolchain: every target for FUZZ_SECONDS
# (default 20) seconds, starting from the committed seeds.
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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"   # cargo fuzz finds fuzz/ from the repository root

seconds="${FUZZ_SECONDS:-20}"
install_timeout="${FUZZ_INSTALL_TIMEOUT:-600}"
targets="${FUZZ_TARGETS:-msrp_frame msrp_uri msrp_session msrp_relay sip_message sdp multipart sip_transaction msrp_sdp hop_establishment iwf_convert cpm_roles}"

skip() {
    echo "################################################################"
    echo "### SKIP fuzz smoke: $*"
    echo "################################################################"
    exit 0
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found: installing (timeout ${install_timeout}s)"
    start=$SECONDS
    if ! timeout "$install_timeout" cargo install cargo-fuzz --locked; then
        skip "cargo install cargo-fuzz --locked failed or timed out"
    fi
    echo "cargo-fuzz installed in $((SECONDS - start)) s"
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
    budget="${seconds}s"
    [ -n "${FUZZ_RUNS:-}" ] && budget="$FUZZ_RUNS runs, seed ${FUZZ_SEED:-1}"
    echo "=== $target: $budget from $(ls "$corpus" | wc -l) inputs"
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
    if cargo fuzz run -s none "$target" -- "${limits[@]}"; then
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
