#!/usr/bin/env bash
# A fuzzing campaign on the stable toolchain: every target (or those named)
# for M minutes each, J at a time, with its dictionary; new inputs that add
# coverage are merged into fuzz/corpus/<target>/ (git-ignored).
#
#   fuzz/campaign.sh --minutes 30 --jobs 2                 # every target
#   fuzz/campaign.sh --minutes 10 --jobs 1 msrp_frame sdp  # those two, one after the other
#   fuzz/campaign.sh --minutes 0.5 --jobs 2 sip_message    # 30 s (decimals are fine)
#
# Wall time is about ceil(targets / J) * M minutes plus the build. Give J at
# most the number of cores: each libFuzzer process uses one.
#
# On the first crash (or timeout, or out-of-memory) the other targets are
# stopped, the input is minimised (cargo fuzz tmin) and printed with the
# command that reproduces it, and the script exits 1. Exit 0: every target
# ran clean (or SKIP: cargo-fuzz could not be installed); 2: usage error;
# 130: interrupted (the corpus found so far is still merged).
#
# Environment: FUZZ_TIMEOUT (seconds per input before libFuzzer calls it a
# hang, default 60), FUZZ_RSS_LIMIT_MB (default 2048), FUZZ_TMIN_RUNS
# (default 255), FUZZ_INSTALL_TIMEOUT (default 600).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FUZZ_ROOT"

usage() {
    sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    echo "usage: fuzz/campaign.sh --minutes M --jobs J [TARGET...]" >&2
    exit 2
}

minutes=""
jobs=""
targets=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --minutes) [ "$#" -ge 2 ] || usage; minutes="$2"; shift 2 ;;
        --minutes=*) minutes="${1#*=}"; shift ;;
        --jobs) [ "$#" -ge 2 ] || usage; jobs="$2"; shift 2 ;;
        --jobs=*) jobs="${1#*=}"; shift ;;
        -h | --help) usage ;;
        -*) echo "campaign: unknown option $1" >&2; usage ;;
        *) targets+=("$1"); shift ;;
    esac
done
[[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "campaign: --minutes needs a number" >&2; usage; }
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "campaign: --jobs needs a whole number >= 1" >&2; usage; }
seconds="$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 0.5 }')"
[ "$seconds" -ge 1 ] || { echo "campaign: --minutes $minutes is under a second" >&2; usage; }
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(fuzz_all_targets)
fi
for target in "${targets[@]}"; do
    fuzz_is_target "$target" || { echo "campaign: '$target' is not a target of fuzz/Cargo.toml" >&2; exit 2; }
done
fuzz_check_dicts

if ! fuzz_ensure_cargo_fuzz; then
    fuzz_skip_banner "fuzz campaign: cargo install cargo-fuzz --locked failed or timed out"
    exit 0
fi
echo "using $(cargo fuzz --version); ${#targets[@]} target(s), ${seconds} s each, $jobs at a time"

# One build for all (the same flags as `cargo fuzz run -s none`, so the
# reproduce and tmin commands below reuse it): release, debug assertions,
# no sanitizer (stable).
if [ "${#targets[@]}" -eq "$(fuzz_all_targets | wc -l)" ]; then
    cargo fuzz build -s none
else
    for target in "${targets[@]}"; do
        cargo fuzz build -s none "$target"
    done
fi
bin_dir="${CARGO_TARGET_DIR:-fuzz/target}/$(fuzz_host_triple)/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-campaign.XXXXXX")"
running=()        # pids of the running jobs
declare -A job_of # pid -> target
interrupted=0

# Asks every running job to stop; each job interrupts its fuzzer (which then
# prints its final stats) and still merges what it found.
stop_jobs() {
    local pid
    for pid in "${running[@]}"; do
        touch "$work/${job_of[$pid]}/stopped"
        kill -TERM "$pid" 2>/dev/null || true
    done
}
cleanup() {
    stop_jobs
    for pid in "${running[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'interrupted=1; echo "campaign: interrupted, stopping the jobs"; stop_jobs' INT TERM

# One target's campaign, run in the background: fuzz into a fresh folder,
# then merge what adds coverage into fuzz/corpus/<target>. Writes its
# results into $work/<target>/.
run_job() {
    local target="$1" dir="$work/$1" bin="$bin_dir/$1" corpus="fuzz/corpus/$1" child rc=0
    local inputs=()
    mkdir -p "$dir/new" "$corpus" "fuzz/artifacts/$target"
    mapfile -t inputs < <(fuzz_input_dirs "$target")
    find "$corpus" -type f | wc -l >"$dir/before"
    # libFuzzer writes new inputs into the first folder; the others are read only.
    "$bin" -dict="$(fuzz_dict "$target" "$dir/$target.dict")" \
        -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-60}" \
        -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" \
        "$dir/new" "${inputs[@]}" >"$dir/log" 2>&1 &
    child=$!
    # stop_jobs sends TERM, Ctrl-C sends INT: either way the fuzzer gets an
    # INT (it stops cleanly and prints its stats) and this job goes on to merge.
    local signalled=0
    trap 'signalled=1; kill -INT "$child" 2>/dev/null || true' INT TERM
    while :; do
        signalled=0
        rc=0
        wait "$child" || rc=$?
        [ "$signalled" -eq 1 ] || break # else the trap cut the wait short: wait again
    done
    trap '' INT TERM # the merge below runs to its end
    echo "$rc" >"$dir/rc"
    # Keep only what adds coverage to the corpus (crashing inputs are in
    # fuzz/artifacts/, never in new/).
    if [ -n "$(find "$dir/new" -type f -print -quit)" ]; then
        "$bin" -merge=1 -merge_control_file="$dir/merge.control" -timeout="${FUZZ_TIMEOUT:-60}" \
            -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}" "$corpus" "$dir/new" >"$dir/merge.log" 2>&1 ||
            touch "$dir/merge-failed"
    fi
    find "$corpus" -type f | wc -l >"$dir/after"
    touch "$dir/done"
}

# The value of libFuzzer's "stat::NAME: value" line in log $1, or "?".
final_stat() {
    local value
    value="$(sed -n "s/^stat::$2: *//p" "$1" | tail -n 1)"
    echo "${value:-?}"
}
# Field NAME ("cov", "ft", "corp") of libFuzzer's last status line in log $1.
status_field() {
    local value
    value="$(grep -E "^#[0-9]+.* $2: " "$1" | tail -n 1 | sed -E "s/.* $2: ([^ ]+).*/\1/")"
    echo "${value:-?}"
}

queue=("${targets[@]}")
crashed=""
start=$SECONDS
while [ "${#queue[@]}" -gt 0 ] || [ "${#running[@]}" -gt 0 ]; do
    while [ -z "$crashed" ] && [ "$interrupted" -eq 0 ] && [ "${#queue[@]}" -gt 0 ] &&
        [ "${#running[@]}" -lt "$jobs" ]; do
        target="${queue[0]}"
        queue=("${queue[@]:1}")
        mkdir -p "$work/$target"
        run_job "$target" &
        running+=("$!")
        job_of[$!]="$target"
        echo "campaign: $target started ($((SECONDS - start)) s)"
    done
    if [ -n "$crashed" ] || [ "$interrupted" -ne 0 ]; then
        queue=()
    fi
    sleep 1 || true # cut short by Ctrl-C: the INT trap has stopped the jobs
    still=()
    for pid in "${running[@]}"; do
        target="${job_of[$pid]}"
        if [ ! -e "$work/$target/done" ] && kill -0 "$pid" 2>/dev/null; then
            still+=("$pid")
            continue
        fi
        wait "$pid" 2>/dev/null || true
        rc="$(cat "$work/$target/rc" 2>/dev/null || echo "?")"
        if [ -e "$work/$target/stopped" ]; then
            echo "campaign: $target stopped ($((SECONDS - start)) s)"
        else
            echo "campaign: $target finished ($((SECONDS - start)) s, libFuzzer exit $rc)"
        fi
        if [ "$rc" != 0 ] && [ ! -e "$work/$target/stopped" ] && [ -z "$crashed" ]; then
            crashed="$target"
        fi
    done
    running=("${still[@]}")
    if [ -n "$crashed" ] && [ "${#running[@]}" -gt 0 ]; then
        echo "campaign: $crashed failed: stopping the other targets"
        stop_jobs
    fi
done

echo
echo "== campaign summary: ${seconds} s per target, $jobs job(s), $((SECONDS - start)) s in all"
printf '%-18s %12s %9s %5s %7s %7s %6s %7s %8s\n' \
    target runs runs/s new merged corpus cov ft crashes
for target in "${targets[@]}"; do
    dir="$work/$target"
    if [ ! -e "$dir/done" ]; then
        printf '%-18s %s\n' "$target" "not run (stopped before its turn)"
        continue
    fi
    crashes=0
    [ "$(cat "$dir/rc")" != 0 ] && [ ! -e "$dir/stopped" ] && crashes=1
    before="$(cat "$dir/before")"
    after="$(cat "$dir/after")"
    note=""
    [ -e "$dir/stopped" ] && note=" (stopped early)"
    printf '%-18s %12s %9s %5s %7s %7s %6s %7s %8s%s\n' "$target" \
        "$(final_stat "$dir/log" number_of_executed_units)" "$(final_stat "$dir/log" average_exec_per_sec)" \
        "$(final_stat "$dir/log" new_units_added)" "+$((after - before))" "$after" \
        "$(status_field "$dir/log" cov)" "$(status_field "$dir/log" ft)" "$crashes" "$note"
    if [ -e "$dir/merge-failed" ]; then
        echo "  the merge into $corpus failed (its new inputs are lost); last lines of libFuzzer's output:"
        tail -n 5 "$dir/merge.log" | sed 's/^/    /'
    fi
done
echo "(runs, runs/s, new: libFuzzer's final stats; merged: inputs that joined fuzz/corpus/<target>;"
echo " cov, ft: edges and features from its last status line)"

if [ -n "$crashed" ]; then
    log="$work/$crashed/log"
    echo
    echo "== $crashed: libFuzzer output (last 40 lines)"
    tail -n 40 "$log"
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    if [ -z "$artifact" ] || [ ! -f "$artifact" ]; then
        echo "campaign: $crashed exited $(cat "$work/$crashed/rc") without writing an input (see above)"
        exit 1
    fi
    minimized="$artifact"
    echo
    echo "== minimising $artifact (cargo fuzz tmin, ${FUZZ_TMIN_RUNS:-255} runs)"
    if cargo fuzz tmin -s none -r "${FUZZ_TMIN_RUNS:-255}" "$crashed" "$artifact" >"$work/tmin.log" 2>&1 ||
        grep -q 'minimized-from-' "$work/tmin.log"; then
        found="$(grep -o 'fuzz/artifacts/[^ ]*minimized-from-[0-9a-f]*' "$work/tmin.log" | tail -n 1 || true)"
        [ -n "$found" ] && [ -f "$found" ] && minimized="$found"
    else
        echo "cargo fuzz tmin failed (last lines below); showing the unminimised input"
        tail -n 15 "$work/tmin.log"
    fi
    echo
    echo "== $crashed: failing input $minimized ($(wc -c <"$minimized") bytes)"
    od -A d -c "$minimized" | head -n 40
    echo
    echo "Reproduce:   cargo fuzz run -s none $crashed $minimized"
    echo "Or directly: $bin_dir/$crashed $minimized"
    echo "Then copy it to fuzz/regressions/$crashed/<what>_<where>, fix the bug, and the replay test keeps it fixed."
    exit 1
fi
if [ "$interrupted" -ne 0 ]; then
    exit 130
fi
echo "all targets ran clean"
