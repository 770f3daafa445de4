#!/usr/bin/env bash
# Runs the OSS-Fuzz build script locally, the way OSS-Fuzz does (no Docker):
# SRC, OUT and WORK are fresh temporary folders, $SRC/cpm-large-message is a
# copy of this checkout (tracked and new, not ignored, files), the script is
# copied to $SRC/build.sh and run from the repository copy. Then checks that
# every target of fuzz/Cargo.toml has its binary, <target>.dict and
# <target>_seed_corpus.zip in $OUT, and that each binary loads its
# dictionary and runs its seeds clean (-runs=0).
#
#   fuzz/oss-fuzz/test-build.sh                   # OSS-Fuzz layout
#   fuzz/oss-fuzz/test-build.sh --clusterfuzzlite # through .clusterfuzzlite/build.sh
#
# A fresh build (about 3 minutes on 2 cores); FUZZ_TEST_BUILD_TARGET_DIR
# names a cargo target folder to reuse instead. FUZZ_KEEP=1 keeps the
# temporary folders. Exits 0 with a SKIP line when cargo-fuzz cannot be
# installed, 1 when the build or a check fails.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$FUZZ_ROOT"

project=cpm-large-message
entry=fuzz/oss-fuzz/build.sh
case "${1:-}" in
    "") ;;
    --clusterfuzzlite) entry=.clusterfuzzlite/build.sh ;;
    *) sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac

if ! fuzz_ensure_cargo_fuzz; then
    fuzz_skip_banner "OSS-Fuzz build test: cargo install cargo-fuzz --locked failed or timed out"
    exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-oss-build.XXXXXX")"
if [ -n "${FUZZ_KEEP:-}" ]; then
    echo "keeping $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi
export SRC="$tmp/src" OUT="$tmp/out" WORK="$tmp/work"
mkdir -p "$SRC/$project" "$OUT" "$WORK"
export CARGO_TARGET_DIR="${FUZZ_TEST_BUILD_TARGET_DIR:-$tmp/cargo-target}"
unset SANITIZER RUSTFLAGS # a local stable build: build.sh falls back to -s none

# The checkout as `COPY . $SRC/<project>` would see it (minus ignored files).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' file; do
            [ -e "$file" ] && printf '%s\0' "$file" # skip files deleted in the work tree
        done | tar --null -T - -cf - | tar -C "$SRC/$project" -xf -
else
    tar --exclude=./target --exclude=./fuzz/target --exclude=./fuzz/corpus --exclude=./fuzz/artifacts \
        --exclude=./fuzz/coverage -cf - . | tar -C "$SRC/$project" -xf -
fi
cp "$entry" "$SRC/build.sh"
echo "SRC=$SRC OUT=$OUT WORK=$WORK CARGO_TARGET_DIR=$CARGO_TARGET_DIR ($entry)"

start=$SECONDS
(cd "$SRC/$project" && bash -eu "$SRC/build.sh")
echo "build.sh finished in $((SECONDS - start)) s"

# Lists the entries of zip $1, one per line.
zip_entries() {
    if command -v unzip >/dev/null 2>&1; then
        unzip -Z1 "$1"
    else
        python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1"
    fi
}
unzip_to() {
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$1" -d "$2"
    else
        python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
    fi
}

failed=0
fail() {
    echo "FAIL $*"
    failed=1
}
printf '%-18s %10s %8s %6s  %s\n' target binary dict seeds "seeds run (-runs=0)"
for target in $(fuzz_all_targets); do
    bin="$OUT/$target" dict="$OUT/$target.dict" zip="$OUT/${target}_seed_corpus.zip"
    [ -x "$bin" ] || { fail "$target: no executable $bin"; continue; }
    [ -s "$dict" ] || { fail "$target: no dictionary $dict"; continue; }
    [ -s "$zip" ] || { fail "$target: no seed corpus $zip"; continue; }
    seeds="$(zip_entries "$zip" | grep -c .)" || true
    [ "$seeds" -gt 0 ] || { fail "$target: $zip is empty"; continue; }
    mkdir -p "$WORK/check/$target"
    unzip_to "$zip" "$WORK/check/$target"
    if "$bin" -dict="$dict" -runs=0 "$WORK/check/$target" >"$WORK/check/$target.log" 2>&1 &&
        grep -q '^Dictionary: [1-9]' "$WORK/check/$target.log"; then
        verdict="ok, $(sed -n 's/^Dictionary: \([0-9]*\) entries.*/\1/p' "$WORK/check/$target.log") dictionary entries"
    else
        tail -n 20 "$WORK/check/$target.log"
        fail "$target: the binary failed on its seeds or did not load its dictionary"
        continue
    fi
    printf '%-18s %9sK %7sB %6s  %s\n' "$target" "$(($(wc -c <"$bin") / 1024))" "$(wc -c <"$dict")" "$seeds" "$verdict"
done
extra="$(find "$OUT" -maxdepth 1 -type f | wc -l)"
echo "\$OUT holds $extra files for $(fuzz_all_targets | wc -l) targets"
if [ "$failed" -ne 0 ]; then
    echo "OSS-Fuzz build test FAILED"
    exit 1
fi
echo "OSS-Fuzz build test passed"
