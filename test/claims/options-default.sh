#!/usr/bin/env bash
# options-default.sh MEMORY_TEST_BINARY -- a bad AMALLOC_* value is ignored and the default stays
# (README, Options): with bad values for every option, AMALLOC_VERBOSE=1 must list each at its
# default, and each bad value must have one warning line. (Booleans also take yes/no, true/false,
# on/off: those are not bad values.)
set -u
bin=$1
fail=0
out=$(AMALLOC_VERBOSE=1 AMALLOC_PURGE_DELAY_MS=soon AMALLOC_PURGE=sometimes AMALLOC_PURGE_THREAD=2 \
  AMALLOC_THP=maybe AMALLOC_HUGETLB=2 AMALLOC_POPULATE=-1 AMALLOC_LARGE_THRESHOLD=100 \
  AMALLOC_SHOW_STATS=x "$bin" options 2>&1) || { echo "bad values were fatal"; fail=1; }
echo "$out"
for want in PURGE_DELAY_MS=25 PURGE=dontneed PURGE_THREAD=0 THP=0 HUGETLB=0 POPULATE=0 \
    LARGE_THRESHOLD=262144 SHOW_STATS=0; do
  echo "$out" | grep -q "^amalloc: option $want\$" || { echo "FAIL: not at its default: $want"; fail=1; }
done
for var in PURGE_DELAY_MS PURGE PURGE_THREAD THP HUGETLB POPULATE LARGE_THRESHOLD SHOW_STATS; do
  n=$(echo "$out" | grep -c "^amalloc: warning: AMALLOC_$var=.* is not .*; ignored\$")
  [ "$n" = 1 ] || { echo "FAIL: $n warning lines for AMALLOC_$var (want 1)"; fail=1; }
done
exit $fail
