#!/usr/bin/env bash
# libFuzzer dictionaries (fuzz/dict/*.dict) and which target gets which
# (fuzz/dict/targets.txt).
#
#   fuzz/dict.sh TARGET [OUT]   write TARGET's dictionary (its dictionaries
#                               concatenated; default OUT is
#                               fuzz/target/dict/TARGET.dict) and print its path
#   fuzz/dict.sh --check        check every .dict line and every target's mapping
#   fuzz/dict.sh --list         print "target: dictionaries" for every target
#
#   cargo fuzz run -s none sip_message -- -dict="$(fuzz/dict.sh sip_message)"
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

case "${1:-}" in
    --check)
        fuzz_check_dicts
        echo "fuzz/dict: $(find "$FUZZ_DIR/dict" -name '*.dict' | wc -l) dictionaries, $(fuzz_all_targets | wc -l) targets: OK"
        ;;
    --list)
        for target in $(fuzz_all_targets); do
            echo "$target: $(fuzz_dict_parts "$target")"
        done
        ;;
    "" | -*) usage ;;
    *)
        [ "$#" -le 2 ] || usage
        fuzz_is_target "$1" || { echo "fuzz/dict.sh: '$1' is not a target of fuzz/Cargo.toml" >&2; exit 2; }
        fuzz_dict "$@"
        ;;
esac
