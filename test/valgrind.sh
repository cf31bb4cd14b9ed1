#!/usr/bin/env bash
# valgrind.sh VGCHECK LIBAMALLOC_VG [heaps] -- memcheck over programs using amalloc's valgrind
# build (LD_PRELOAD, --soname-synonyms=somalloc=NONE so that amalloc itself runs):
#   (default)  vgcheck.c: a use after free, an overflow into unallocated space and lost blocks
#              are reported as for glibc's malloc;
#   heaps      heaps_vg.c: the blocks a first-class heap's destroy or reset frees are freed
#              blocks to memcheck (a read and a write of one are reported);
# and correct use of the API gives no report at all.
set -u
bin=$1
lib=$2
what=${3:-default}
command -v valgrind >/dev/null || exec bash "$(dirname "${BASH_SOURCE[0]}")/tool-missing.sh" valgrind
vg=(valgrind -q --soname-synonyms=somalloc=NONE --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)
[ "$what" = heaps ] && vg=(valgrind -q --soname-synonyms=somalloc=NONE --error-exitcode=99 --leak-check=no)
fail=0
check() { # check NAME WANT_RC PATTERN...
  local name=$1 want=$2; shift 2
  local out rc
  out=$(LD_PRELOAD=$lib "${vg[@]}" "$bin" "$name" 2>&1); rc=$?
  if [ "$rc" != "$want" ]; then echo "FAIL $name: exit $rc, expected $want"; echo "$out" | head -30; fail=1; return; fi
  for pat in "$@"; do
    if ! grep -q -- "$pat" <<<"$out"; then echo "FAIL $name: no '$pat' in memcheck's report"; echo "$out" | head -30; fail=1; return; fi
  done
  echo "ok   $name"
}
if [ "$what" = heaps ]; then
  check uaf-destroy 99 "Invalid read of size 1" "Invalid write of size 1" "bytes inside a block of size 112 free'd" "by 0x[0-9A-F]*: am_heap_destroy"
  check uaf-reset 99 "Invalid read of size 1" "Invalid write of size 1" "bytes inside a block of size 112 free'd" "by 0x[0-9A-F]*: am_heap_reset"
else
  check uaf 99 "Invalid read of size 1" "Invalid write of size 1" "inside a block of size" "free'd"
  check overflow 99 "Invalid read of size 1" "Invalid write of size 1"
  check leak 99 "definitely lost in loss record"
fi
check clean 0
exit $fail
