#!/usr/bin/env bash
# flamegraph.sh -- doc/heap-profiler.md's flame graph: python3 running bench/prof/pyheap.py under
# `amalloc-run --prof`, its live heap drawn by amalloc-prof into doc/flame-python.svg.
#
#   bench/prof/flamegraph.sh [BUILD_DIR]     (default build-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release -Dtests=false > /dev/null
ninja -C "$build" libamalloc.so > /dev/null
tmp=$(mktemp -d /tmp/flamegraph.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# PYTHONMALLOC=malloc: python3 takes its small objects from malloc too (by default they come
# from its own mmap arenas, which no malloc-level profiler sees)
PYTHONMALLOC=malloc "$build/amalloc-run" --prof="$tmp/exit" /usr/bin/python3 bench/prof/pyheap.py "$tmp/py.heap" 2> /dev/null
"$build/amalloc-prof" -n 10 --svg doc/flame-python.svg "$tmp/py.heap"
echo "written: doc/flame-python.svg"
