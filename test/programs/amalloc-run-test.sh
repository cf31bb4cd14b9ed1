#!/usr/bin/env bash
# amalloc-run-test.sh AMALLOC_RUN -- tests the launcher script of the build tree (build/amalloc-run,
# which finds build/libamalloc.so beside itself).
set -euo pipefail
run=${1:?usage: amalloc-run-test.sh PATH/TO/amalloc-run}
unset AMALLOC_LIB LD_PRELOAD
status=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; status=1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/amalloc-run-test.XXXXXX")
trap 'rm -rf "$out"' EXIT

[ -x "$run" ] || { echo "FAIL: $run is not executable"; exit 1; }

# 1. the library is found beside the script and is mapped in the program run
if "$run" sh -c 'grep -q libamalloc /proc/$$/maps'; then
  pass "amalloc-run sh: libamalloc is mapped"
else
  fail "amalloc-run sh -c 'grep -q libamalloc /proc/\$\$/maps' failed"
fi
lib=$("$run" sh -c 'printf %s "$LD_PRELOAD"')
builddir=$(cd "$(dirname "$run")" && pwd -P)
if [ "$lib" = "$builddir/libamalloc.so" ]; then
  pass "LD_PRELOAD=$lib"
else
  fail "LD_PRELOAD is '$lib', expected '$builddir/libamalloc.so'"
fi
# am_version is found in the process (python, if there is one)
if [ -x /usr/bin/python3 ]; then
  v=$("$run" /usr/bin/python3 -c 'import ctypes; print(ctypes.CDLL(None).am_version())' 2>&1) || true
  if [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ]; then pass "am_version() = $v in python3"; else fail "python3 under amalloc-run: $v"; fi
fi

# 2. --help and -h exit 0 and print the usage; no arguments: usage on stderr, exit 2
if "$run" --help > "$out/help" 2>&1 && grep -q '^usage: amalloc-run' "$out/help"; then
  pass "--help"
else
  fail "--help: $(cat "$out/help")"
fi
"$run" -h > /dev/null 2>&1 || fail "-h exit status $?"
rc=0; "$run" > "$out/none" 2>&1 || rc=$?
if [ "$rc" = 2 ] && grep -q '^usage:' "$out/none"; then pass "no argument: exit 2 with usage"; else fail "no argument: exit $rc: $(cat "$out/none")"; fi

# 3. AMALLOC_LIB names a missing library: exit 127 and the error line
rc=0; AMALLOC_LIB=/nonexistent "$run" true > "$out/missing" 2>&1 || rc=$?
if [ "$rc" = 127 ] && [ "$(cat "$out/missing")" = "amalloc-run: error: cannot find libamalloc.so" ]; then
  pass "AMALLOC_LIB=/nonexistent: exit 127 with the error line"
else
  fail "AMALLOC_LIB=/nonexistent: exit $rc, output: $(cat "$out/missing")"
fi

# 4. AMALLOC_LIB is used when set, also as a relative path (made absolute)
if [ -f "$builddir/libamalloc.so" ]; then
  got=$(cd "$builddir" && AMALLOC_LIB=./libamalloc.so "$run" sh -c 'printf %s "$LD_PRELOAD"')
  if [ "$got" = "$builddir/libamalloc.so" ]; then pass "relative AMALLOC_LIB made absolute"; else fail "relative AMALLOC_LIB gave LD_PRELOAD=$got"; fi
  cp "$builddir/libamalloc.so" "$out/libamalloc.so"
  got=$(AMALLOC_LIB="$out/libamalloc.so" "$run" sh -c 'printf %s "$LD_PRELOAD"; grep -q "$0" /proc/$$/maps && echo " mapped"' "$out/libamalloc.so")
  if [ "$got" = "$out/libamalloc.so mapped" ]; then pass "AMALLOC_LIB=copy is preloaded"; else fail "AMALLOC_LIB=copy: $got"; fi
fi

# 5. an LD_PRELOAD already set is kept, after libamalloc.so
libm=$(ls /lib/x86_64-linux-gnu/libm.so.6 /usr/lib64/libm.so.6 /lib64/libm.so.6 2>/dev/null | head -1 || true)
if [ -n "$libm" ]; then
  got=$(LD_PRELOAD="$libm" "$run" sh -c 'printf %s "$LD_PRELOAD"')
  if [ "$got" = "$builddir/libamalloc.so:$libm" ]; then pass "existing LD_PRELOAD kept: $got"; else fail "existing LD_PRELOAD: got '$got'"; fi
fi

# 6. arguments and the exit status pass through; -- ends the options
got=$("$run" -- printf '[%s]' 'a b' '' c)
[ "$got" = "[a b][][c]" ] && pass "arguments passed through" || fail "arguments: $got"
rc=0; "$run" sh -c 'exit 42' || rc=$?
[ "$rc" = 42 ] && pass "exit status passed through" || fail "exit status $rc, expected 42"

# 7. through a symlink elsewhere, the library is still found beside the real script
ln -s "$(cd "$(dirname "$run")" && pwd -P)/$(basename "$run")" "$out/amalloc-run-link"
if (cd / && "$out/amalloc-run-link" sh -c 'grep -q libamalloc /proc/$$/maps'); then
  pass "through a symlink"
else
  fail "through a symlink: libamalloc not mapped"
fi
exit $status
