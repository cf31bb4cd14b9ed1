#!/usr/bin/env bash
# hugepages-hugetlb.sh HUGEPAGES_TEST_BINARY -- `hugepages hugetlb` with AMALLOC_HUGETLB=1 and 16
# huge pages reserved (root only; skipped otherwise); the old reservation is restored.
set -u
bin=$1
nr=/proc/sys/vm/nr_hugepages
if [ "$(id -u)" != 0 ] || [ ! -w $nr ]; then echo "hugepages-hugetlb: needs root to reserve huge pages; skipped"; exit 77; fi
old=$(cat $nr)
trap 'echo "$old" > $nr' EXIT
echo 16 > $nr
got=$(cat $nr)
if [ "$got" -lt 8 ]; then echo "hugepages-hugetlb: the kernel gave only $got huge pages; skipped"; exit 77; fi
AMALLOC_HUGETLB=1 "$bin" hugetlb
