#!/usr/bin/env bash
# os-only.sh SOURCE_ROOT -- README, Design: "src/os.c is the only caller of mmap/munmap/madvise/
# mremap/mprotect". Fails if any other file of src/ or preload/ calls one of them.
set -u
root=$1
hits=$(grep -nE '\b(mmap|munmap|madvise|mremap|mprotect)[[:space:]]*\(' "$root"/src/*.c "$root"/src/*.h \
  "$root"/preload/*.c 2>/dev/null | grep -v "^$root/src/os\.c:" | grep -vE ':[0-9]+:[[:space:]]*(/?\*|//)')
if [ -n "$hits" ]; then echo "FAIL: mapping calls outside src/os.c:"; echo "$hits"; exit 1; fi
echo "ok: only src/os.c calls mmap/munmap/madvise/mremap/mprotect"
