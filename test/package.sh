#!/usr/bin/env bash
# test/package.sh -- build amalloc's Debian packages from a clean copy of the tree, check them
# with lintian, install them into this machine, use them, and purge them again (issue 17;
# doc/packaging.md).
#
#   test/package.sh [SOURCE_DIR]          (meson test --suite package; as root, on Debian)
#
# 1. copies the tree: `git archive` of HEAD, or of the working tree's tracked files when they
#    differ from HEAD (`git stash create`: nothing of the worktree changes), so that untracked
#    and ignored files (build directories) never reach the build, as from a clean clone;
# 2. dpkg-buildpackage -us -uc -b in that copy (debian/rules: dh + meson, tests off);
# 3. lintian on the .debs: any error fails the test, the warnings are printed;
# 4. installs the three packages (apt-get install ./*.deb, so a missing dependency comes from
#    the archive; whatever it pulls in is purged again at the end);
# 5. checks the installed files: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libamalloc.so.0 python3
#    runs on amalloc (its statistics report at exit, the library mapped); a C program built with
#    `pkg-config --cflags --libs amalloc` against libamalloc.so.0 and one against libamalloc.a
#    call am_malloc/am_stats_get and see their malloc counted by amalloc; the installed
#    amalloc-run preloads the installed library; `man -w` finds the man pages the tree has;
# 6. purges everything it installed and compares `dpkg -l` before and after: the machine must
#    be as it was.
# AMALLOC_PACKAGE_KEEP=1 keeps the temporary directory (the .debs and the logs) and prints it.
# Exit 77 (skip, with the reason) when not root, without dpkg/apt-get/git, when one of the
# packages is installed already (not ours to purge), or when debhelper or lintian are missing
# and cannot be installed (no network); 0 when every check passed, 1 otherwise.
set -uo pipefail

src=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
pkgs=(libamalloc0 libamalloc-dev amalloc-tools)
multiarch_lib=/usr/lib/x86_64-linux-gnu
failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
skip() { echo "SKIP: $*"; exit 77; }
step() { printf '\n==> %s\n' "$*"; }

# ---- preconditions ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "not root: installing packages needs root"
for c in dpkg dpkg-query apt-get git; do
  command -v "$c" >/dev/null 2>&1 || skip "no $c: not a Debian system with git"
done
[ "$(dpkg --print-architecture)" = amd64 ] || skip "the packages are built for amd64 only"
git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || skip "$src is not a git checkout"
for p in "${pkgs[@]}"; do
  if dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
    skip "$p is installed already: this test would replace and purge it"
  fi
done
# the build tools: test/run.sh installs them; a lone run installs what is missing, or skips
need=()
for p in build-essential debhelper dpkg-dev lintian pkg-config meson ninja-build man-db; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; } \
    < /dev/null > /dev/null 2>&1 ||
    skip "cannot install ${need[*]} (no network or no apt source?)"
fi

tmp=$(mktemp -d /tmp/amalloc-package.XXXXXX)
before=$tmp/dpkg-before.txt
after=$tmp/dpkg-after.txt
installed_now=()
dpkg_list() { dpkg-query -W -f '${binary:Package} ${Version} ${db:Status-Abbrev}\n' | sort; }
dpkg_list > "$before"

# purge what this test installed (also when a check fails half-way), then compare dpkg -l
cleanup() {
  if [ "${#installed_now[@]}" -gt 0 ]; then
    step "purging ${installed_now[*]}"
    DEBIAN_FRONTEND=noninteractive dpkg --purge "${installed_now[@]}" > "$tmp/purge.log" 2>&1 ||
      { cat "$tmp/purge.log"; fail "dpkg --purge ${installed_now[*]}"; }
    installed_now=()
  fi
  dpkg_list > "$after"
  if diff -u "$before" "$after" > "$tmp/dpkg.diff"; then
    pass "dpkg -l is the same before and after the test ($(wc -l < "$before") packages)"
  else
    fail "dpkg -l differs before and after the test:"
    cat "$tmp/dpkg.diff"
  fi
  for f in "$multiarch_lib/libamalloc.so.0" /usr/include/amalloc.h /usr/bin/amalloc-run; do
    [ ! -e "$f" ] || fail "$f is still there after the purge"
  done
}
finish() {
  cleanup
  if [ -n "${AMALLOC_PACKAGE_KEEP:-}" ]; then
    echo "kept $tmp (the .debs, build.log, lintian.log)"
  else
    rm -rf "$tmp"
  fi
  if [ "$failures" = 0 ]; then echo "package test: all checks passed"; exit 0; fi
  echo "package test: $failures check(s) failed"
  exit 1
}
trap 'echo "interrupted"; failures=$((failures + 1)); finish' INT TERM

# ---- 1. a clean copy of the tree ------------------------------------------------------------
step "copying the tree"
rev=$(git -C "$src" stash create 2>/dev/null)
if [ -n "$rev" ]; then
  what="HEAD $(git -C "$src" rev-parse --short HEAD) with the uncommitted changes to tracked files"
else
  rev=HEAD; what="HEAD $(git -C "$src" rev-parse --short HEAD)"
fi
mkdir -p "$tmp/build/amalloc"
if git -C "$src" archive --format=tar "$rev" | tar -x -C "$tmp/build/amalloc"; then
  pass "git archive of $what"
else
  fail "git archive of $what"; finish
fi
[ -f "$tmp/build/amalloc/debian/control" ] || { fail "the tree has no debian/control"; finish; }
has_man3=0; has_man1=0
[ -f "$tmp/build/amalloc/doc/man/amalloc.3" ] && has_man3=1
ls "$tmp/build/amalloc"/doc/man/*.1 >/dev/null 2>&1 && has_man1=1

# ---- 2. build -----------------------------------------------------------------------------------
step "dpkg-buildpackage -us -uc -b"
t0=$(date +%s)
if (cd "$tmp/build/amalloc" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
      dpkg-buildpackage -us -uc -b) > "$tmp/build.log" 2>&1; then
  pass "dpkg-buildpackage -us -uc -b ($(($(date +%s) - t0)) s)"
else
  tail -60 "$tmp/build.log"
  fail "dpkg-buildpackage -us -uc -b (log above)"; finish
fi
grep -E '^dpkg-gensymbols: (warning|error)' "$tmp/build.log" &&
  fail "dpkg-gensymbols: the exported symbols differ from debian/libamalloc0.symbols"
debs=()
for p in "${pkgs[@]}"; do
  d=$(ls "$tmp/build/${p}"_*_amd64.deb 2>/dev/null | head -1)
  if [ -n "$d" ]; then debs+=("$d"); else fail "no ${p}_*_amd64.deb was built"; fi
done
[ "${#debs[@]}" = "${#pkgs[@]}" ] || finish
for d in "${debs[@]}"; do echo "  $(basename "$d"): $(dpkg-deb -c "$d" | awk '$1 !~ /^d/ {print $6}' | tr '\n' ' ')"; done

# what each package must hold (doc/packaging.md)
contents() { dpkg-deb -c "$1" | awk '{print $6}' | sed 's|^\./|/|; s| .*||'; }
expect_in() { # expect_in DEB PATH...
  local deb=$1; shift
  local list; list=$(contents "$deb")
  for f in "$@"; do
    grep -qxF "$f" <<<"$list" || fail "$(basename "$deb") lacks $f"
  done
}
expect_in "${debs[0]}" "$multiarch_lib/libamalloc.so.0" "$multiarch_lib/libamalloc-secure.so.0"
expect_in "${debs[1]}" /usr/include/amalloc.h "$multiarch_lib/libamalloc.so" \
  "$multiarch_lib/libamalloc.a" "$multiarch_lib/libamalloc-api.a" \
  "$multiarch_lib/pkgconfig/amalloc.pc"
expect_in "${debs[2]}" /usr/bin/amalloc-run /usr/bin/amalloc-prof
[ "$has_man3" = 0 ] || expect_in "${debs[1]}" /usr/share/man/man3/amalloc.3.gz
[ "$has_man1" = 0 ] || expect_in "${debs[2]}" /usr/share/man/man1/amalloc-run.1.gz
soname=$(dpkg-deb --fsys-tarfile "${debs[0]}" | tar -xO ".$multiarch_lib/libamalloc.so.0" |
  { cat > "$tmp/so"; readelf -d "$tmp/so" 2>/dev/null; } | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libamalloc.so.0 ] && pass "SONAME $soname" || fail "SONAME is '$soname'"
if dpkg-deb -I "${debs[0]}" symbols > "$tmp/symbols" 2>/dev/null &&
   grep -q '^libamalloc.so.0 ' "$tmp/symbols" && grep -q '^libamalloc-secure.so.0 ' "$tmp/symbols"; then
  pass "libamalloc0 has a symbols file ($(grep -c '@Base' "$tmp/symbols") symbols)"
else
  fail "libamalloc0 has no symbols control file for both libraries"
fi

# ---- 3. lintian ---------------------------------------------------------------------------------
step "lintian"
lintian --fail-on error --display-info --pedantic --tag-display-limit 0 "${debs[@]}" > "$tmp/lintian.log" 2>&1
lrc=$?
cat "$tmp/lintian.log"
if grep -q '^E: ' "$tmp/lintian.log" || [ "$lrc" != 0 ]; then
  fail "lintian reports errors (exit $lrc)"
else
  pass "lintian: no errors ($(grep -c "^W: " "$tmp/lintian.log") warnings, $(grep -c "^I: " "$tmp/lintian.log") infos, listed above)"
fi

# ---- 4. install ---------------------------------------------------------------------------------
step "apt-get install ./*.deb"
if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${debs[@]}" \
     < /dev/null > "$tmp/install.log" 2>&1; then
  pass "apt-get install of the three packages"
else
  cat "$tmp/install.log"; fail "apt-get install"
fi
# every package dpkg knows now and did not before (in any state: a half-installed one too):
# ours, and any dependency apt pulled in
mapfile -t installed_now < <(dpkg_list | awk '{print $1}' | sort -u |
  comm -13 <(awk '{print $1}' "$before" | sort -u) -)
echo "installed now: ${installed_now[*]:-nothing}"
[ "${#installed_now[@]}" -gt 0 ] || finish

# ---- 5. use the installed files -----------------------------------------------------------------
step "LD_PRELOAD=$multiarch_lib/libamalloc.so.0 python3"
preload=$multiarch_lib/libamalloc.so.0
if [ -f "$preload" ]; then
  out=$(LD_PRELOAD=$preload AMALLOC_SHOW_STATS=1 python3 -c '
import sys
d = {i: str(i) * 3 for i in range(200000)}
maps = open("/proc/self/maps").read()
print("mapped" if sys.argv[1] in maps else "not mapped", sum(len(v) for v in d.values()))
' "$preload" 2>&1)
  rc=$?
  if [ "$rc" = 0 ] && grep -q '^mapped ' <<<"$out" && grep -q 'amalloc: statistics' <<<"$out"; then
    pass "python3 ran on amalloc: $(grep '^mapped' <<<"$out"), statistics report printed"
  else
    fail "LD_PRELOAD python3 (exit $rc): $(head -5 <<<"$out")"
  fi
else
  fail "$preload is not installed"
fi

step "programs built with pkg-config --cflags --libs amalloc"
cat > "$tmp/user.c" <<'EOF'
/* a user of the installed libamalloc-dev: malloc is amalloc's, and the am_* API works */
#include <amalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  am_stats_t before = {.size = sizeof before}, after = {.size = sizeof after};
  if (am_stats_get(&before) != 0) { puts("am_stats_get failed"); return 1; }
  void *big = malloc((size_t)64 << 20);   /* a large block: counted by amalloc if it is malloc */
  void *small = am_malloc(100);
  if (!big || !small) { puts("allocation failed"); return 1; }
  memset(big, 1, 4096);
  memset(small, 2, 100);
  if (am_stats_get(&after) != 0) { puts("am_stats_get failed"); return 1; }
  long n = (long)(after.large_mallocs - before.large_mallocs);
  free(big);
  am_free(small);
  if (n != 1) { printf("malloc(64 MiB) counted %ld large blocks in am_stats, not 1\n", n); return 1; }
  printf("amalloc %d: malloc is amalloc's (1 large block counted), am_malloc works\n", am_version());
  return 0;
}
EOF
cflags=$(pkg-config --cflags amalloc 2>"$tmp/pc.err") &&
  libs=$(pkg-config --libs amalloc 2>>"$tmp/pc.err") &&
  slibs=$(pkg-config --static --libs amalloc 2>>"$tmp/pc.err") ||
  fail "pkg-config amalloc: $(cat "$tmp/pc.err")"
echo "pkg-config: --cflags '$cflags' --libs '$libs' --static --libs '$slibs'"
# shellcheck disable=SC2086  # pkg-config output is word-split on purpose
if gcc -o "$tmp/user-shared" "$tmp/user.c" $cflags $libs 2> "$tmp/cc.log"; then
  if out=$("$tmp/user-shared" 2>&1); then
    pass "shared: $out"
  else
    fail "shared program: $out"
  fi
  # (with merged /usr, ldd may name it /lib/x86_64-linux-gnu/...: the same file)
  got=$(ldd "$tmp/user-shared" | sed -n 's/^[[:space:]]*libamalloc.so.0 => \([^ ]*\) .*/\1/p')
  if [ -n "$got" ] && [ "$(readlink -f "$got")" = "$(readlink -f "$multiarch_lib/libamalloc.so.0")" ]; then
    pass "the shared program loads $multiarch_lib/libamalloc.so.0"
  else
    fail "the shared program does not load $multiarch_lib/libamalloc.so.0: $(ldd "$tmp/user-shared")"
  fi
else
  fail "gcc user.c \$(pkg-config --cflags --libs amalloc): $(cat "$tmp/cc.log")"
fi
# static: the same flags, with the archive taken instead of the shared library
# shellcheck disable=SC2086
if gcc -o "$tmp/user-static" "$tmp/user.c" $cflags \
     ${slibs/-lamalloc/-Wl,-Bstatic -lamalloc -Wl,-Bdynamic} 2> "$tmp/cc.log"; then
  if out=$("$tmp/user-static" 2>&1); then pass "static: $out"; else fail "static program: $out"; fi
  if ldd "$tmp/user-static" | grep -q libamalloc; then
    fail "the static program loads a libamalloc shared library"
  else
    pass "the static program has libamalloc.a linked in (no libamalloc.so loaded)"
  fi
else
  fail "gcc user.c with pkg-config --static and -Bstatic -lamalloc: $(cat "$tmp/cc.log")"
fi

step "amalloc-run and the man pages"
if command -v amalloc-run >/dev/null 2>&1 &&
   out=$(amalloc-run sh -c 'grep -o "/[^ ]*libamalloc[^ ]*" /proc/$$/maps | sort -u' 2>&1) &&
   grep -qx "$multiarch_lib/libamalloc.so.0" <<<"$out"; then
  pass "installed amalloc-run preloads $out"
else
  fail "installed amalloc-run: ${out:-not found}"
fi
if [ "$has_man3" = 1 ]; then
  m=$(man -w amalloc 2>&1) && [ "$m" = /usr/share/man/man3/amalloc.3.gz ] &&
    pass "man -w amalloc: $m" || fail "man -w amalloc: $m"
else
  echo "note: the tree has no doc/man/amalloc.3: man -w amalloc not checked"
fi
if [ "$has_man1" = 1 ]; then
  for page in amalloc-run amalloc-prof; do
    [ -f "$tmp/build/amalloc/doc/man/$page.1" ] || continue
    m=$(man -w "$page" 2>&1) && [ "$m" = "/usr/share/man/man1/$page.1.gz" ] &&
      pass "man -w $page: $m" || fail "man -w $page: $m"
  done
fi
if out=$(amalloc-prof --help 2>&1) && grep -q 'amalloc-prof' <<<"$out"; then
  pass "installed amalloc-prof --help runs"
else
  fail "installed amalloc-prof --help: $(head -3 <<<"$out")"
fi
# the secure build, where the installed amalloc-run offers it (--secure)
if amalloc-run --help 2>/dev/null | grep -q -- '--secure'; then
  out=$(amalloc-run --secure sh -c 'grep -o "/[^ ]*libamalloc[^ ]*" /proc/$$/maps | sort -u' 2>&1)
  if [ "$out" = "$multiarch_lib/libamalloc-secure.so.0" ]; then
    pass "installed amalloc-run --secure preloads $out"
  else
    fail "installed amalloc-run --secure: $out"
  fi
fi

# ---- 6. purge, and the machine as it was ---------------------------------------------------------
finish
