#!/usr/bin/env bash
# hugetlb.sh MEMORY_TEST_BINARY -- AMALLOC_HUGETLB=1 with and without reserved huge pages.
# Reserves 48 huge pages (root only; skipped otherwise), runs `memory hugetlb`, restores the
# old reservation; then, with none reserved, checks the clean fallback and its verbose message.
set -u
bin=$1
nr=/proc/sys/vm/nr_hugepages
if [ "$(id -u)" != 0 ] || [ ! -w $nr ]; then echo "hugetlb: needs root to reserve huge pages; skipped"; exit 77; fi
old=$(cat $nr)
trap 'echo "$old" > $nr' EXIT
fail=0
echo 48 > $nr
got=$(cat $nr)
if [ "$got" -lt 40 ]; then echo "hugetlb: the kernel gave only $got huge pages; skipped"; exit 77; fi
AMALLOC_HUGETLB=1 "$bin" hugetlb || fail=1
echo 0 > $nr
out=$(AMALLOC_HUGETLB=1 AMALLOC_VERBOSE=1 "$bin" populate 2>&1) || fail=1
echo "$out"
echo "$out" | grep -q "amalloc: AMALLOC_HUGETLB: no huge pages available" || { echo "hugetlb: no fallback message"; fail=1; }
exit $fail
