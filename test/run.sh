#!/usr/bin/env bash
# test/run.sh -- build amalloc and run its whole test suite; the README's test command.
#
#   ./test/run.sh            (from the repository root; on Debian 12, as root or with sudo)
#
# 1. installs what is missing with apt-get (only when something is missing);
# 2. meson setup (or reconfigure) the build directory, buildtype release;
# 3. meson compile, then meson test --print-errorlogs --num-processes 2;
# 4. prints the elapsed time and, as the very last line, "N passed, M failed, K skipped" (always
#    all three; skipped tests are not passes). A build failure prints "0 passed, 1 failed, 0
#    skipped". On Debian as root every tool is installed, so nothing may be skipped there: a test
#    whose tool is missing fails instead (test/tool-missing.sh).
#
# Environment:
#   AMALLOC_BUILD_DIR   build directory (default: build-test)
#   MESON_SETUP_ARGS    extra arguments for meson setup (word-split)
#   MESON_TEST_ARGS     extra arguments for meson test, e.g. "--suite programs" (word-split)
#   AMALLOC_NO_APT=1    never run apt-get
# Exit status: 0 if no test failed, 1 otherwise.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
builddir=${AMALLOC_BUILD_DIR:-build-test}
start=$(date +%s)

elapsed() {
  local s=$(($(date +%s) - start))
  printf 'elapsed: %dm%02ds\n' $((s / 60)) $((s % 60))
}
# finish PASSED FAILED SKIPPED: prints the closing lines and exits
finish() {
  elapsed
  echo "$1 passed, $2 failed, ${3:-0} skipped"
  if [ "$2" -eq 0 ]; then exit 0; else exit 1; fi
}
step() { printf '\n==> %s\n' "$*"; }

# ---- 1. dependencies ------------------------------------------------------------------------
step "checking the tools"
missing=()
check_cmd() { # check_cmd COMMAND PACKAGE
  if ! command -v "$1" >/dev/null 2>&1; then missing+=("$2"); fi
}
check_cmd meson meson
check_cmd ninja ninja-build
check_cmd gcc gcc
check_cmd g++ g++
check_cmd pkg-config pkg-config
check_cmd valgrind valgrind
check_cmd perl perl
check_cmd sqlite3 sqlite3
check_cmd git git
check_cmd xz xz-utils
check_cmd zstd zstd
# the fuzz test: clang with libFuzzer (libclang-rt-dev) and llvm-symbolizer for its reports
check_cmd clang clang
check_cmd llvm-symbolizer llvm
check_cmd timeout coreutils
# the heap profiler's tests: pprof reads its profiles (--svg needs graphviz's dot), amalloc-prof
# symbolises with binutils' addr2line
check_cmd google-pprof google-perftools
check_cmd dot graphviz
check_cmd addr2line binutils
# the man pages' test renders them with groff (test/man.sh)
check_cmd groff groff-base
# the tests use the system python explicitly (not a pyenv/venv one)
[ -x /usr/bin/python3 ] || missing+=(python3)
if command -v dpkg >/dev/null 2>&1; then
  dpkg -s libc6-dev >/dev/null 2>&1 || missing+=(libc6-dev)
  dpkg -s libclang-rt-dev >/dev/null 2>&1 || missing+=(libclang-rt-dev)   # libFuzzer
  # the package test (test/package.sh): building the Debian packages and checking them
  dpkg -s build-essential >/dev/null 2>&1 || missing+=(build-essential)
  dpkg -s debhelper >/dev/null 2>&1 || missing+=(debhelper)
  dpkg -s dpkg-dev >/dev/null 2>&1 || missing+=(dpkg-dev)
  dpkg -s lintian >/dev/null 2>&1 || missing+=(lintian)
  dpkg -s man-db >/dev/null 2>&1 || missing+=(man-db)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "missing: ${missing[*]}"
  if [ -n "${AMALLOC_NO_APT:-}" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: not installing them (no apt-get, or AMALLOC_NO_APT is set)"
  else
    sudo=()
    if [ "$(id -u)" != 0 ]; then
      if command -v sudo >/dev/null 2>&1; then sudo=(sudo -n); else echo "warning: not root and no sudo"; fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q ||
      echo "warning: apt-get update failed"
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" < /dev/null ||
      echo "warning: apt-get install ${missing[*]} failed; the tests that need them will fail"
  fi
else
  echo "all present"
fi
command -v meson >/dev/null 2>&1 || { echo "error: meson is not installed"; finish 0 1 0; }

# ---- 2. configure and build -------------------------------------------------------------------
# shellcheck disable=SC2206  # MESON_SETUP_ARGS is word-split on purpose
setup_args=(--buildtype=release ${MESON_SETUP_ARGS:-})
step "meson setup $builddir ${setup_args[*]}"
if [ -f "$builddir/meson-private/coredata.dat" ]; then
  if ! meson setup --reconfigure "$builddir" "${setup_args[@]}"; then
    echo "reconfigure failed: wiping $builddir"
    meson setup --wipe "$builddir" "${setup_args[@]}" || { echo "error: meson setup failed"; finish 0 1 0; }
  fi
else
  rm -rf "$builddir"
  meson setup "$builddir" "${setup_args[@]}" || { echo "error: meson setup failed"; finish 0 1 0; }
fi

step "meson compile -C $builddir"
meson compile -C "$builddir" || { echo "error: the build failed"; finish 0 1 0; }
# The shared libraries are libamalloc.so.0 and libamalloc-secure.so.0, with libamalloc.so links
# that meson makes when it configures. In a build directory that built a plain libamalloc.so
# before (older trees), ninja's log still names that file as an output, and every regeneration's
# cleandead deletes the link again: drop the dead entries and configure once more.
if [ ! -e "$builddir/libamalloc.so" ] || [ ! -e "$builddir/libamalloc-secure.so" ]; then
  echo "restoring the libamalloc.so links (ninja -t recompact, meson setup --reconfigure)"
  ninja -C "$builddir" -t recompact >/dev/null 2>&1
  meson setup --reconfigure "$builddir" "${setup_args[@]}" >/dev/null ||
    { echo "error: meson setup failed"; finish 0 1 0; }
  [ -e "$builddir/libamalloc.so" ] || echo "warning: $builddir/libamalloc.so is still missing"
fi

# ---- 3. test -----------------------------------------------------------------------------------
# shellcheck disable=SC2206  # MESON_TEST_ARGS is word-split on purpose
test_args=(--print-errorlogs --num-processes 2 ${MESON_TEST_ARGS:-})
step "meson test -C $builddir ${test_args[*]}"
log="$builddir/meson-logs/run-sh-test-output.txt"
rm -f "$builddir/meson-logs/testlog.json"
meson test -C "$builddir" "${test_args[@]}" < /dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# ---- 4. count ----------------------------------------------------------------------------------
# meson's summary: "Ok:", "Expected Fail:", "Fail:", "Unexpected Pass:", "Skipped:", "Timeout:"
count() { # count LABEL: the number on the last summary line "LABEL: N" (empty if none)
  sed -n "s/^$1:[[:space:]]*\([0-9][0-9]*\)[[:space:]]*\$/\1/p" "$log" | tail -1
}
ok=$(count 'Ok')
if [ -n "$ok" ]; then
  xfail=$(count 'Expected Fail'); fail=$(count 'Fail'); xpass=$(count 'Unexpected Pass')
  skipped=$(count 'Skipped'); timeout=$(count 'Timeout')
  passed=$((ok + ${xfail:-0}))
  failed=$((${fail:-0} + ${xpass:-0} + ${timeout:-0}))
  skipped=${skipped:-0}
elif [ -f "$builddir/meson-logs/testlog.json" ] && [ -x /usr/bin/python3 ]; then
  # no summary on stdout: count the results in meson's JSON log instead
  read -r passed failed skipped < <(/usr/bin/python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
PY
  ) || { passed=0; failed=1; skipped=0; }
else
  echo "error: meson test printed no summary"
  passed=0; failed=1; skipped=0
fi
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
  echo "error: meson test exited with status $rc"
  failed=1
fi
if [ "$((passed + failed))" = 0 ]; then
  echo "error: no test was run"
  failed=1
fi
finish "$passed" "$failed" "$skipped"
