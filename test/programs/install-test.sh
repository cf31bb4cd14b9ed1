#!/usr/bin/env bash
# install-test.sh BUILDDIR [MESON] -- installs the build into a temporary DESTDIR with
# `meson install`, then checks what a user of the installed package gets:
#   - pkg-config --cflags --libs amalloc finds the header and the library in the DESTDIR;
#   - a C program compiled with those flags (and an rpath to the installed libdir) runs with
#     the installed libamalloc.so as its malloc;
#   - the same program linked with the installed libamalloc.a;
#   - the installed amalloc-run launches a program with the installed libamalloc.so preloaded.
set -euo pipefail
builddir=$(cd "${1:?usage: install-test.sh BUILDDIR [MESON]}" && pwd)
meson=${2:-meson}
# meson test sets LD_LIBRARY_PATH to the build dir: it would beat the rpath to the DESTDIR
unset AMALLOC_LIB LD_PRELOAD DESTDIR LD_LIBRARY_PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/amalloc-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/dest"
status=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; status=1; }
command -v pkg-config >/dev/null 2>&1 || exec bash "$(dirname "${BASH_SOURCE[0]}")/../tool-missing.sh" pkg-config
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || cc=gcc

# 1. install (no rebuild: meson test has built everything already)
if ! "$meson" install -C "$builddir" --no-rebuild --destdir "$dest" > "$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"
  echo "FAIL: meson install failed"
  exit 1
fi
echo "installed files:"
(cd "$dest" && find . -type f -o -type l | sort | sed 's|^\./|  /|')

pc=$(find "$dest" -name amalloc.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: amalloc.pc was not installed"; exit 1; }
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")            # <prefix>/<libdir>
run=$(find "$dest" -path '*/bin/amalloc-run' | head -1)
for f in "$libdir/libamalloc.so" "$libdir/libamalloc.a" "$libdir/libamalloc-api.a"; do
  [ -e "$f" ] && pass "installed ${f#"$dest"}" || fail "${f#"$dest"} is not installed"
done
[ -n "$(find "$dest" -path '*/include/amalloc.h')" ] && pass "installed amalloc.h" || fail "amalloc.h is not installed"
[ -n "$run" ] && [ -x "$run" ] && pass "installed ${run#"$dest"} (executable)" || fail "bin/amalloc-run is not installed executable"
for m in man3/amalloc.3 man1/amalloc-run.1 man1/amalloc-prof.1; do
  [ -n "$(find "$dest" -path "*/share/man/$m*")" ] && pass "installed the man page $m" || fail "share/man/$m is not installed"
done

# 2. pkg-config, relocated into the DESTDIR with PKG_CONFIG_SYSROOT_DIR
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_LIBDIR="$pcdir"
version=$(pkg-config --modversion amalloc) || { echo "FAIL: pkg-config cannot read amalloc.pc"; cat "$pc"; exit 1; }
cflags=$(pkg-config --cflags amalloc)
libs=$(pkg-config --libs amalloc)
static_libs=$(pkg-config --static --libs amalloc)
echo "pkg-config: version $version; cflags '$cflags'; libs '$libs'; static libs '$static_libs'"
case "$libs" in *"-L$dest"*) pass "pkg-config --libs points into the DESTDIR" ;; *) fail "pkg-config --libs does not point into $dest: $libs" ;; esac
# pkg-config may drop -I of a system include dir: add the installed include dir explicitly if so
incdir=$(dirname "$(find "$dest" -path '*/include/amalloc.h' | head -1)")
case "$cflags" in *"-I$incdir"*) ;; *) echo "(pkg-config --cflags has no -I$incdir; adding it)"; cflags="$cflags -I$incdir" ;; esac

cat > "$tmp/user.c" <<'C'
#define _GNU_SOURCE
#include <amalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern void *am_malloc(size_t) __attribute__((weak));
int main(int argc, char **argv) {
  void *volatile m = (void *)&malloc, *volatile a = (void *)&am_malloc;
  if (!a || m != a) { printf("malloc %p is not am_malloc %p\n", m, a); return 1; }
  if (am_version() != AMALLOC_VERSION) { printf("version %d != %d\n", am_version(), AMALLOC_VERSION); return 1; }
  char *p = malloc(1000);
  if (!p || am_malloc_usable_size(p) < 1000) return 1;
  free(p);
  /* where the library comes from (argv[1]: the path expected, or "static") */
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, "libamalloc")) { found = 1; if (argc > 1 && strstr(line, argv[1])) found = 2; }
  if (f) fclose(f);
  if (argc > 1 && strcmp(argv[1], "static") == 0) {
    if (found) { printf("libamalloc.so is mapped in the static-lib program\n"); return 1; }
  } else if (found != 2) {
    printf("libamalloc.so from %s is not mapped\n", argc > 1 ? argv[1] : "?");
    return 1;
  }
  printf("amalloc %d\n", am_version());
  return 0;
}
C
# 3. linked with the installed libamalloc.so
# shellcheck disable=SC2086  # the pkg-config flags are meant to be split
if "$cc" -o "$tmp/user" "$tmp/user.c" $cflags $libs -Wl,-rpath,"$libdir" > "$tmp/cc.log" 2>&1; then
  if out=$("$tmp/user" "$libdir/libamalloc.so" 2>&1); then
    pass "program built with pkg-config flags runs on the installed libamalloc.so: $out"
  else
    fail "program built with pkg-config flags: $out"
  fi
else
  fail "cannot compile with pkg-config flags: $(cat "$tmp/cc.log")"
fi
# 4. linked with the installed libamalloc.a (pkg-config --static, the archive named explicitly)
static_extra=$(echo " $static_libs " | sed 's/ -lamalloc / /')
# shellcheck disable=SC2086
if "$cc" -o "$tmp/user-static" "$tmp/user.c" $cflags "$libdir/libamalloc.a" $static_extra \
     > "$tmp/cc.log" 2>&1; then
  if out=$("$tmp/user-static" static 2>&1); then
    pass "program linked with the installed libamalloc.a: $out"
  else
    fail "program linked with the installed libamalloc.a: $out"
  fi
else
  fail "cannot link with libamalloc.a: $(cat "$tmp/cc.log")"
fi

# 5. the installed amalloc-run finds the installed library (../lib*/ or ../lib*/*/)
if [ -n "$run" ]; then
  got=$("$run" sh -c 'printf %s "$LD_PRELOAD"' 2>&1) || true
  # the runtime name libamalloc.so.0 when the install has it (a SONAME), else libamalloc.so
  want=$(cd "$libdir" && pwd -P)/libamalloc.so
  [ -f "$want.0" ] && want=$want.0
  if [ "$got" = "$want" ]; then
    pass "installed amalloc-run preloads $got"
  else
    fail "installed amalloc-run set LD_PRELOAD='$got', expected $want"
  fi
  if "$run" sh -c 'grep -qF "$0" /proc/$$/maps' "$libdir/libamalloc.so"; then
    pass "installed amalloc-run: the installed libamalloc.so is mapped in the program"
  else
    fail "installed amalloc-run: $libdir/libamalloc.so is not mapped in the program"
  fi
  "$run" --help > /dev/null || fail "installed amalloc-run --help"
fi
exit $status
