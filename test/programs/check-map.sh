#!/usr/bin/env bash
# check-map.sh MAPFILE MEMBER... -- checks a linker map (-Wl,-Map) of a program linked with
# libamalloc.a: libamalloc.a must have been pulled in, and none of the archive members named
# (e.g. libc.a's malloc.o, libstdc++.a's new_op.o) may have been: if one was, the C library's
# malloc or libstdc++'s operator new is in the program beside (or instead of) amalloc's.
set -euo pipefail
map=${1:?usage: check-map.sh MAPFILE MEMBER...}
shift
[ -f "$map" ] || { echo "FAIL: no linker map $map"; exit 1; }
# the members the linker took from archives: lines like "/path/libfoo.a(member.o)"
members=$(sed -n '/^Archive member included/,/^Discarded input sections/p' "$map" |
          grep -oE '^[^ ]+\.a\([^)]+\)' | sort -u)
status=0
if grep -q 'libamalloc\.a(' <<<"$members"; then
  echo "ok: $(grep 'libamalloc\.a(' <<<"$members" | sed 's|.*/||' | tr '\n' ' ')is linked in"
else
  echo "FAIL: no member of libamalloc.a was linked in"
  status=1
fi
for want_absent in "$@"; do
  if hit=$(grep -F "$want_absent" <<<"$members"); then
    echo "FAIL: $hit was linked in: it should have been replaced by amalloc's definitions"
    # why: the reference that pulled it in
    grep -A1 -F "$hit" "$map" | head -4 | sed 's/^/    /'
    status=1
  else
    echo "ok: $want_absent not linked in"
  fi
done
# for information: what came from libc.a and libstdc++.a that has "malloc", "new" or "del" in it
grep -E '(libc|libstdc\+\+)\.a\(([^)]*malloc|new_|del_)[^)]*\)' <<<"$members" | sed 's|.*/|  also linked: |' || true
exit $status
