#!/usr/bin/env bash
# amalloc-run-test.sh AMALLOC_RUN VERSION STATIC_PROGRAM -- tests the launcher script of the build
# tree (build/amalloc-run, which finds build/libamalloc.so beside itself): the library search,
# its options (--secure, --stats, --verbose, --thp, --purge-delay, --help, --version) and its
# errors (program not found, statically linked program, bad option value).
set -euo pipefail
run=${1:?usage: amalloc-run-test.sh PATH/TO/amalloc-run VERSION STATIC_PROGRAM}
version=${2:?usage: amalloc-run-test.sh PATH/TO/amalloc-run VERSION STATIC_PROGRAM}
static_prog=${3:?usage: amalloc-run-test.sh PATH/TO/amalloc-run VERSION STATIC_PROGRAM}
unset AMALLOC_LIB LD_PRELOAD
for v in $(env | sed -n 's/^\(AMALLOC_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
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
# the runtime name (libamalloc.so.0) when the build has one, else libamalloc.so
want_lib=$builddir/libamalloc.so
[ -f "$builddir/libamalloc.so.0" ] && want_lib=$builddir/libamalloc.so.0
if [ "$lib" = "$want_lib" ]; then
  pass "LD_PRELOAD=$lib"
else
  fail "LD_PRELOAD is '$lib', expected '$want_lib'"
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
  if [ "$got" = "$want_lib:$libm" ]; then pass "existing LD_PRELOAD kept: $got"; else fail "existing LD_PRELOAD: got '$got'"; fi
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
# 8. --version: the meson project's version
got=$("$run" --version)
[ "$got" = "amalloc-run (amalloc) $version" ] && pass "--version: $got" || fail "--version printed '$got', expected 'amalloc-run (amalloc) $version'"

# 9. --secure preloads the secure build, and it is the one in force (am_version through it,
# its library mapped, the default one not)
got=$("$run" --secure sh -c 'printf %s "$LD_PRELOAD"')
case "$got" in
  "$builddir/libamalloc-secure.so"|"$builddir/libamalloc-secure.so.0") pass "--secure: LD_PRELOAD=$got" ;;
  *) fail "--secure: LD_PRELOAD=$got" ;;
esac
if "$run" --secure sh -c 'grep -q "libamalloc-secure" /proc/$$/maps && ! grep -q "libamalloc\.so" /proc/$$/maps'; then
  pass "--secure: libamalloc-secure is mapped, libamalloc.so is not"
else
  fail "--secure: the secure library is not the one mapped"
fi

# 10. --stats, --verbose, --thp, --purge-delay set amalloc's variables, and amalloc acts on them
# (true, not sh: dash leaves with _exit, which runs no destructor, so no statistics)
"$run" --stats true 2> "$out/stats" || fail "--stats: exit $?"
grep -q '^amalloc: statistics' "$out/stats" && pass "--stats: the statistics at exit" || fail "--stats printed: $(head -3 "$out/stats")"
"$run" true 2> "$out/nostats"
[ ! -s "$out/nostats" ] && pass "without options: nothing on stderr" || fail "without options, stderr: $(head -3 "$out/nostats")"
"$run" --verbose --thp --purge-delay 100 true 2> "$out/verbose" || fail "--verbose: exit $?"
for want in 'VERBOSE=1' 'THP=1' 'PURGE_DELAY_MS=100'; do
  grep -q "^amalloc: option $want\$" "$out/verbose" && pass "--verbose --thp --purge-delay 100: option $want" ||
    fail "--verbose --thp --purge-delay 100: no 'amalloc: option $want' in: $(head -3 "$out/verbose")"
done
got=$("$run" --purge-delay=-1 sh -c 'printf %s "$AMALLOC_PURGE_DELAY_MS"')
[ "$got" = -1 ] && pass "--purge-delay=-1" || fail "--purge-delay=-1: AMALLOC_PURGE_DELAY_MS=$got"
for bad in x 1.5 -2 3600001 ''; do
  rc=0; "$run" --purge-delay "$bad" true > "$out/bad" 2>&1 || rc=$?
  if [ "$rc" = 2 ] && grep -q '^amalloc-run: error: --purge-delay takes milliseconds' "$out/bad"; then
    pass "--purge-delay '$bad': exit 2 with the error"
  else
    fail "--purge-delay '$bad': exit $rc: $(cat "$out/bad")"
  fi
done
rc=0; "$run" --purge-delay > "$out/bad" 2>&1 || rc=$?
[ "$rc" = 2 ] && pass "--purge-delay without a value: exit 2" || fail "--purge-delay without a value: exit $rc"

# 11. a program that is not found: exit 127 and one line
rc=0; "$run" amalloc-no-such-program-here > "$out/nf" 2>&1 || rc=$?
if [ "$rc" = 127 ] && [ "$(cat "$out/nf")" = "amalloc-run: error: amalloc-no-such-program-here: command not found" ]; then
  pass "program not found: exit 127 with one line"
else
  fail "program not found: exit $rc: $(cat "$out/nf")"
fi
rc=0; "$run" ./no/such/file > "$out/nf" 2>&1 || rc=$?
[ "$rc" = 127 ] && [ "$(wc -l < "$out/nf")" = 1 ] && pass "path not found: exit 127" || fail "path not found: exit $rc: $(cat "$out/nf")"

# 12. a statically linked program: exit 126 and one line saying LD_PRELOAD cannot work; a
# dynamically linked one (sh, above) and a script run
rc=0; "$run" "$static_prog" > "$out/static" 2>&1 || rc=$?
if [ "$rc" = 126 ] && [ "$(wc -l < "$out/static")" = 1 ] &&
   grep -q "^amalloc-run: error: $static_prog is statically linked: LD_PRELOAD cannot" "$out/static"; then
  pass "statically linked program: exit 126: $(cat "$out/static")"
else
  fail "statically linked program: exit $rc: $(cat "$out/static")"
fi
printf '#!/bin/sh\ngrep -q libamalloc /proc/$$/maps\n' > "$out/script.sh"
chmod +x "$out/script.sh"
"$run" "$out/script.sh" && pass "a script runs, with libamalloc mapped" || fail "a script under amalloc-run"
exit $status
