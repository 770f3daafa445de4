#!/bin/bash -eu
# ClusterFuzzLite build: the OSS-Fuzz build script of the repository
# (binaries, dictionaries and seed corpora of every target into $OUT).
exec bash -eu "$SRC/${FUZZ_PROJECT:-cpm-large-message}/fuzz/oss-fuzz/build.sh" "$@"
