#!/usr/bin/env bash
# valgrind.sh VGCHECK LIBAMALLOC_VG -- memcheck over programs using amalloc's valgrind build
# (LD_PRELOAD, --soname-synonyms=somalloc=NONE so that amalloc itself runs): a use after free,
# an overflow into unallocated space and lost blocks must be reported as for glibc's malloc,
# and correct use of the API must give no report at all.
set -u
bin=$1
lib=$2
command -v valgrind >/dev/null || exec bash "$(dirname "${BASH_SOURCE[0]}")/tool-missing.sh" valgrind
vg=(valgrind -q --soname-synonyms=somalloc=NONE --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)
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
check uaf 99 "Invalid read of size 1" "Invalid write of size 1" "inside a block of size" "free'd"
check overflow 99 "Invalid read of size 1" "Invalid write of size 1"
check leak 99 "definitely lost in loss record"
check clean 0
exit $fail
