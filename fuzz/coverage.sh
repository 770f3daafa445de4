#!/usr/bin/env bash
# Line coverage of the fuzz targets' inputs, per crate, on the stable toolchain.
#
#   fuzz/coverage.sh msrp_frame sip_message   # those targets, then both together
#   fuzz/coverage.sh                          # every target
#   FUZZ_COVERAGE_HTML=1 fuzz/coverage.sh sdp # also an HTML report per target
#
# Each target's inputs (fuzz/corpus/<target>, fuzz/seeds/<target> and
# fuzz/regressions/<target>, those that exist) run once through
# `cargo fuzz coverage -s none` (a -Cinstrument-coverage build in
# fuzz/target/coverage/, no fuzzing); then llvm-cov prints covered lines per
# crate src/ folder (msrp-core, sip-lite, cpm-negotiation, cpm-roles). The
# profile is fuzz/coverage/<target>/coverage.profdata (git-ignored).
#
# Needs llvm-profdata and llvm-cov as new as rustc's LLVM: the rustup
# component llvm-tools (installed here if missing), else llvm-<major> from
# PATH or apt-get; LLVM_PROFDATA / LLVM_COV override. Exits 0 with a SKIP
# line when cargo-fuzz or the LLVM tools cannot be had, 1 when a run fails.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FUZZ_ROOT"

crates=(msrp-core sip-lite cpm-negotiation cpm-roles)
install_timeout="${FUZZ_INSTALL_TIMEOUT:-600}"

skip() {
    fuzz_skip_banner "fuzz coverage: $*"
    exit 0
}

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(fuzz_all_targets)
fi
for target in "${targets[@]}"; do
    case "$target" in
        -h | --help) sed -n '2,19s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    esac
    fuzz_is_target "$target" || { echo "coverage: '$target' is not a target of fuzz/Cargo.toml" >&2; exit 2; }
done

fuzz_ensure_cargo_fuzz || skip "cargo install cargo-fuzz --locked failed or timed out"

triple="$(fuzz_host_triple)"
llvm_major="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
rust_bin="$(rustc --print sysroot)/lib/rustlib/$triple/bin"

# Prints the path of llvm-$1 (profdata or cov) matching rustc's LLVM, or
# nothing.
find_tool() {
    local name="llvm-$1" candidate
    for candidate in "$rust_bin/$name" "$name-$llvm_major" "$name"; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" --version 2>/dev/null | grep -q "LLVM version $llvm_major\."; then
            command -v "$candidate"
            return 0
        fi
    done
}
profdata="${LLVM_PROFDATA:-$(find_tool profdata)}"
llvm_cov="${LLVM_COV:-$(find_tool cov)}"
if [ -z "$profdata" ] || [ -z "$llvm_cov" ]; then
    echo "llvm-profdata/llvm-cov for LLVM $llvm_major not found: rustup component add llvm-tools-preview"
    timeout "$install_timeout" rustup component add llvm-tools-preview || true
    profdata="$(find_tool profdata)"
    llvm_cov="$(find_tool cov)"
fi
if { [ -z "$profdata" ] || [ -z "$llvm_cov" ]; } && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "trying apt-get install llvm-$llvm_major"
    timeout "$install_timeout" bash -c "apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-$llvm_major >/dev/null 2>&1" || true
    profdata="$(find_tool profdata)"
    llvm_cov="$(find_tool cov)"
fi
if [ -z "$profdata" ] || [ -z "$llvm_cov" ]; then
    skip "no llvm-profdata/llvm-cov for LLVM $llvm_major (rustup component llvm-tools, or apt llvm-$llvm_major)"
fi
echo "using $(cargo fuzz --version), $llvm_cov (LLVM $llvm_major)"

target_dir="fuzz/target/coverage"
bin_dir="$target_dir/$triple/release"

# Prints one table row per crate for llvm-cov arguments "$@" (the objects
# and the profile): lines, covered, percentage of the crate's src/. Only the
# code linked into the objects counts (a crate a target never calls shows as
# "not linked").
report() {
    printf '  %-22s %8s %8s %8s\n' "crate" "lines" "covered" "cover"
    # export: one JSON line, {"filename":"<absolute path>","summary":{..."lines":{"count":N,"covered":M...
    # Several targets together: functions that two binaries build differently
    # under one name (each target's fuzz entry point, some generic code) make
    # llvm-cov warn "N functions have mismatched data" and keep one version;
    # expected here, so that warning is hidden.
    "$llvm_cov" export -summary-only "$@" 2> >(grep -v 'functions have mismatched data' >&2) |
        sed 's/{"filename":"/\n/g' |
        awk -v root="$FUZZ_ROOT/" -v crates="${crates[*]}" '
            BEGIN { n = split(crates, name, " ") }
            {
                for (i = 1; i <= n; i++) {
                    prefix = root name[i] "/src/"
                    if (substr($0, 1, length(prefix)) != prefix) continue
                    if (!match($0, /"lines":[{]"count":[0-9]+,"covered":[0-9]+/)) continue
                    pair = substr($0, RSTART, RLENGTH)
                    gsub(/[^0-9,]/, "", pair)
                    split(pair, v, ",")
                    lines[i] += v[1]
                    covered[i] += v[2]
                }
            }
            END {
                for (i = 1; i <= n; i++) {
                    if (lines[i] == 0) printf "  %-22s %8s %8s %8s\n", name[i] "/src", "-", "-", "not linked"
                    else printf "  %-22s %8d %8d %7.1f%%\n", name[i] "/src", lines[i], covered[i], 100 * covered[i] / lines[i]
                }
            }'
}

profiles=()
objects=()
failed=()
for target in "${targets[@]}"; do
    mapfile -t inputs < <(fuzz_input_dirs "$target")
    counts=""
    for dir in "${inputs[@]}"; do
        counts="$counts ${dir#fuzz/}: $(find "$dir" -type f ! -name '.*' | wc -l)"
    done
    echo
    echo "== $target:${counts:- no inputs}"
    if [ "${#inputs[@]}" -eq 0 ]; then
        failed+=("$target")
        continue
    fi
    out="fuzz/coverage/$target"
    rm -rf "$out"
    mkdir -p "$out"
    start=$SECONDS
    # cargo fuzz merges the raw profiles with the rustup llvm-tools; with
    # only a distribution's LLVM that step fails and the merge is done here.
    if ! cargo fuzz coverage -s none --target-dir "$target_dir" "$target" "${inputs[@]}" >"$out/run.log" 2>&1 ||
        [ ! -s "$out/coverage.profdata" ]; then
        if compgen -G "$out/raw/*.profraw" >/dev/null; then
            "$profdata" merge -sparse "$out"/raw/*.profraw -o "$out/coverage.profdata"
        else
            echo "coverage: cargo fuzz coverage failed for $target, last lines of $out/run.log:"
            tail -n 20 "$out/run.log"
            failed+=("$target")
            continue
        fi
    fi
    echo "  built and ran in $((SECONDS - start)) s"
    report "$bin_dir/$target" -instr-profile="$out/coverage.profdata"
    if [ -n "${FUZZ_COVERAGE_HTML:-}" ]; then
        "$llvm_cov" show -format=html -output-dir="$out/html" -instr-profile="$out/coverage.profdata" \
            "$bin_dir/$target" "${crates[@]/#/$FUZZ_ROOT/}" >/dev/null
        echo "  HTML: $out/html/index.html"
    fi
    profiles+=("$out/coverage.profdata")
    objects+=(-object "$bin_dir/$target")
done

if [ "${#profiles[@]}" -gt 1 ]; then
    echo
    echo "== all ${#profiles[@]} targets together"
    "$profdata" merge -sparse "${profiles[@]}" -o fuzz/coverage/all.profdata
    report "${objects[@]:1}" -instr-profile=fuzz/coverage/all.profdata
fi

if [ "${#failed[@]}" -ne 0 ]; then
    echo "coverage FAILED for: ${failed[*]}"
    exit 1
fi
