#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script (also runs locally on stable; see
# fuzz/oss-fuzz/test-build.sh). Builds every fuzz target and puts into $OUT:
#
#   $OUT/<target>                  the libFuzzer binary
#   $OUT/<target>.dict             its dictionary (fuzz/dict/targets.txt)
#   $OUT/<target>_seed_corpus.zip  fuzz/seeds/<target> + fuzz/regressions/<target>
#
# Environment (set by OSS-Fuzz's `compile`): SRC, OUT, WORK, SANITIZER.
# The repository is $SRC/$FUZZ_PROJECT (default cpm-large-message); OSS-Fuzz
# copies this script to $SRC/build.sh, so it never looks for itself.
#
# Sanitizer: with a nightly rustc and SANITIZER set (OSS-Fuzz), address,
# memory, thread and leak go to cargo fuzz, anything else (undefined,
# coverage, none) builds without one (OSS-Fuzz's cargo wrapper turns the
# coverage build into an instrument-coverage build). Without nightly or
# SANITIZER (a stable toolchain, locally) it builds with `-s none`, the only
# mode stable rustc accepts.
set -euo pipefail

: "${SRC:?SRC must be set (OSS-Fuzz sets it)}"
: "${OUT:?OUT must be set (OSS-Fuzz sets it)}"
WORK="${WORK:-$(mktemp -d)}"
project="${FUZZ_PROJECT:-cpm-large-message}"
fuzz_dir="$SRC/$project/fuzz"
[ -f "$fuzz_dir/Cargo.toml" ] || { echo "build.sh: no $fuzz_dir/Cargo.toml (FUZZ_PROJECT?)" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$fuzz_dir/lib.sh"
cd "$fuzz_dir"

nightly=no
if rustc --version | grep -q -- '-nightly' || [ -n "${RUSTC_BOOTSTRAP:-}" ]; then
    nightly=yes
fi
if [ -n "${SANITIZER:-}" ] && [ "$nightly" = yes ]; then
    case "$SANITIZER" in
        address | memory | thread | leak) sanitizer="$SANITIZER" ;;
        *) sanitizer=none ;;
    esac
else
    sanitizer=none
    echo "build.sh: SANITIZER='${SANITIZER:-}', $(rustc --version): building with -s none (stable fallback)"
    case " ${RUSTFLAGS:-} " in
        *" -Z"*) echo "build.sh: RUSTFLAGS has -Z flags that a stable rustc rejects: RUSTFLAGS='$RUSTFLAGS'" >&2 ;;
    esac
fi

# Release with debug assertions (integer overflow checks included), like
# `cargo fuzz run -s none` locally.
cargo fuzz build -O --debug-assertions -s "$sanitizer"

bin_dir="${CARGO_TARGET_DIR:-$fuzz_dir/target}/${CARGO_BUILD_TARGET:-$(fuzz_host_triple)}/release"
mkdir -p "$OUT" "$WORK"

# Zips the files of folder $2 (flat) into $1, with zip or else python3.
zip_dir() {
    local out
    out="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
    rm -f "$out"
    if command -v zip >/dev/null 2>&1; then
        (cd "$2" && zip -q -X -r "$out" .)
    else
        python3 - "$out" "$2" <<'PY'
import os, sys, zipfile
out, root = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(os.listdir(root)):
        z.write(os.path.join(root, name), name)
PY
    fi
}

for target in $(fuzz_all_targets); do
    install -m 755 "$bin_dir/$target" "$OUT/$target"
    fuzz_dict "$target" "$OUT/$target.dict" >/dev/null
    seeds="$WORK/seed_corpus/$target"
    rm -rf "$seeds"
    mkdir -p "$seeds"
    if [ -d "seeds/$target" ]; then
        find "seeds/$target" -type f ! -name '.*' -exec cp {} "$seeds/" \;
    fi
    if [ -d "regressions/$target" ]; then
        # A prefix keeps a regression from replacing a seed of the same name.
        find "regressions/$target" -type f ! -name '.*' -print0 |
            while IFS= read -r -d '' file; do cp "$file" "$seeds/regression-$(basename "$file")"; done
    fi
    if [ -z "$(find "$seeds" -type f -print -quit)" ]; then
        echo "build.sh: warning: $target has no seeds (fuzz/seeds/$target)" >&2
        continue
    fi
    zip_dir "$OUT/${target}_seed_corpus.zip" "$seeds"
    echo "build.sh: $target: binary, dictionary ($(fuzz_dict_parts "$target")), $(find "$seeds" -type f | wc -l) seeds"
done
