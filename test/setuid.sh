#!/usr/bin/env bash
# setuid.sh EFFECTS_BINARY -- a setuid program ignores the AMALLOC_* environment (AT_SECURE:
# amalloc reads its options with secure_getenv). As root: a copy of the effects test binary,
# owned by nobody with the setuid bit, is run by root (euid nobody != ruid root, so the kernel
# sets AT_SECURE) with AMALLOC_VERBOSE=1, bad and good option values; it must print nothing of
# amalloc's and see the default options (effects secure-env). The same binary without the
# setuid bit must show the environment's effect (verbose lines), or the test proves nothing.
# The copy lives in the build directory, which must not be on a nosuid mount (checked).
set -u
bin=$1
if [ "$(id -u)" != 0 ]; then echo "setuid: needs root to make a setuid copy; skipped"; exit 77; fi
dir=$(dirname "$(realpath "$bin")")/setuid-test
rm -rf "$dir"
mkdir -p "$dir" || exit 1
trap 'rm -rf "$dir"' EXIT
if findmnt -n -o OPTIONS -T "$dir" | tr ',' '\n' | grep -qx nosuid; then
  echo "FAIL: $dir is on a nosuid mount: the setuid bit would have no effect"
  exit 1
fi
cp "$bin" "$dir/effects" && chown nobody "$dir/effects" && chmod 4755 "$dir/effects" || exit 1
chmod 755 "$dir"
env=(AMALLOC_VERBOSE=1 AMALLOC_SHOW_STATS=1 AMALLOC_THP=maybe AMALLOC_PURGE_DELAY_MS=77
     AMALLOC_PURGE=free AMALLOC_LARGE_THRESHOLD=64k AMALLOC_PROF=1 AMALLOC_PROF_SAMPLE=1
     AMALLOC_PROF_LEAKS=1 "AMALLOC_PROF_DUMP=$dir/setuid-prof")
fail=0
out=$(env "${env[@]}" "$dir/effects" secure-env 2>"$dir/err"); rc=$?
echo "$out"
if [ "$rc" != 0 ]; then echo "FAIL: the setuid run exited $rc"; fail=1; fi
if grep -q 'amalloc' "$dir/err"; then
  echo "FAIL: the setuid program printed amalloc messages (the environment was read):"
  cat "$dir/err"; fail=1
fi
if ls "$dir"/setuid-prof.* >/dev/null 2>&1; then
  echo "FAIL: the setuid program wrote a heap profile (AMALLOC_PROF_DUMP was read)"; fail=1
fi
# the control: the same program, not setuid, reads the same environment
chmod 0755 "$dir/effects"
env "${env[@]}" "$dir/effects" secure-env >/dev/null 2>"$dir/err"
grep -q '^amalloc: option PURGE_DELAY_MS=77$' "$dir/err" ||
  { echo "FAIL: control: without the setuid bit AMALLOC_VERBOSE=1 printed no options"; fail=1; }
ls "$dir"/setuid-prof.0001.heap >/dev/null 2>&1 ||
  { echo "FAIL: control: without the setuid bit AMALLOC_PROF_DUMP wrote no profile"; fail=1; }
[ "$fail" = 0 ] && echo "setuid: the environment was ignored (and is read without the setuid bit)"
exit $fail
