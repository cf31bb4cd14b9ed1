#!/usr/bin/env bash
# man.sh SRCDIR AMALLOC_RUN AMALLOC_PROF VERSION -- the man pages (doc/man/*.[13]):
#   1. each renders without a warning: groff -ww -man -Tutf8 (and man -l at MANWIDTH 80 where
#      man is installed) prints nothing on stderr;
#   2. amalloc(3) documents every AMALLOC_* variable amalloc reads (src/), each with the default
#      the library really has (AMALLOC_VERBOSE=1 prints them), and every am_* function of
#      include/amalloc.h;
#   3. amalloc-run(1) and amalloc-prof(1) document every option their --help lists;
#   4. each page's .TH names the meson project's version.
set -u
src=${1:?usage: man.sh SRCDIR AMALLOC_RUN AMALLOC_PROF VERSION}
run=${2:?}; prof=${3:?}; version=${4:?}
here=$(cd "$(dirname "$0")" && pwd)
command -v groff > /dev/null || exec "$here/tool-missing.sh" "groff (groff-base)"
status=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; status=1; }
man=$src/doc/man
pages=("$man/amalloc.3" "$man/amalloc-run.1" "$man/amalloc-prof.1")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/man-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- 1. rendering --------------------------------------------------------------------------------
for p in "${pages[@]}"; do
  name=$(basename "$p")
  [ -f "$p" ] || { fail "$name is missing"; continue; }
  if LC_ALL=C.UTF-8 groff -ww -man -Tutf8 -z "$p" 2> "$tmp/err" && [ ! -s "$tmp/err" ]; then
    pass "$name: groff -ww renders it without a warning"
  else
    fail "$name: groff -ww: $(head -5 "$tmp/err")"
  fi
  if command -v man > /dev/null; then
    if LC_ALL=C.UTF-8 MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings=w -l "$p" > "$tmp/out" 2> "$tmp/err" &&
       [ ! -s "$tmp/err" ] && [ -s "$tmp/out" ]; then
      pass "$name: man -l renders it ($(wc -l < "$tmp/out") lines), no warning"
    else
      fail "$name: man -l: $(head -5 "$tmp/err")"
    fi
  fi
  th=$(sed -n 's/^\.TH [^"]*"amalloc \([^"]*\)".*/\1/p' "$p")
  [ "$th" = "$version" ] && pass "$name: .TH version $th" || fail "$name: .TH says version '$th', meson $version"
done
# the check above can fail: a page with an unknown macro warns
printf '.TH X 1\n.SH NAME\n.NOSUCHMACRO x\n' > "$tmp/bad.1"
groff -ww -man -Tutf8 -z "$tmp/bad.1" 2> "$tmp/err"
[ -s "$tmp/err" ] || fail "groff -ww does not warn about an unknown macro: the rendering check would pass anything"

# the page as text, for the content checks (roff escapes removed by the formatter)
page3=$(LC_ALL=C.UTF-8 MANWIDTH=200 groff -man -Tutf8 -rLL=200n -P-cbou "$man/amalloc.3" 2>/dev/null | sed 's/\xe2\x80\x90/-/g')

# ---- 2. amalloc(3): variables with their defaults, and functions ---------------------------------
vars=$( { sed -n 's/^ *\[AM_OPTION_[A-Z_]*\] = {"\([A-Z_]*\)".*/AMALLOC_\1/p' "$src/src/options.c"
          grep -ohE 'getenv\("AMALLOC_[A-Z_]+"\)' "$src"/src/*.c | grep -oE 'AMALLOC_[A-Z_]+'; } | sort -u)
[ "$(wc -w <<< "$vars")" -ge 13 ] || fail "found only $(wc -w <<< "$vars") AMALLOC_* variables in src/"
# the defaults in force: AMALLOC_VERBOSE=1 lists every option (env -i: no AMALLOC_* set)
defaults=$(env -i PATH="$PATH" AMALLOC_VERBOSE=1 "$run" true 2>&1 | sed -n 's/^amalloc: option //p')
[ -n "$defaults" ] || fail "amalloc-run true with AMALLOC_VERBOSE=1 printed no options"
for v in $vars; do
  line=$(grep -E "^ *$v \(default" <<< "$page3" | head -1)
  if [ -z "$line" ]; then fail "amalloc(3) has no entry '$v (default ...)'"; continue; fi
  doc=$(sed -n 's/.*(default:* \([^)]*\)).*/\1/p' <<< "$line")
  real=$(sed -n "s/^${v#AMALLOC_}=//p" <<< "$defaults")
  [ "$v" = AMALLOC_VERBOSE ] && real=0            # (on, to list them)
  if [ -z "$real" ]; then pass "$v: documented (default $doc; not an option of the table)"; continue; fi
  num=$doc
  case "$doc" in *k) num=$(( ${doc%k} * 1024 )) ;; *m) num=$(( ${doc%m} * 1048576 )) ;; esac
  [ "$num" = "$real" ] && pass "$v: documented, default $doc" || fail "$v: amalloc(3) says default '$doc', the library has $real"
done
funcs=$(grep -oE '\bam_[a-z0-9_]+\(' "$src/include/amalloc.h" | tr -d '(' | sort -u)
[ "$(wc -w <<< "$funcs")" -ge 35 ] || fail "found only $(wc -w <<< "$funcs") am_* functions in amalloc.h"
missing=
for f in $funcs; do grep -qE "(^|[^a-z_])$f\(" <<< "$page3" || missing="$missing $f"; done
[ -z "$missing" ] && pass "amalloc(3): all $(wc -w <<< "$funcs") am_* functions of amalloc.h in the synopsis" ||
  fail "amalloc(3) lacks:$missing"

# ---- 3. the commands' options ------------------------------------------------------------------
for cmd in "$run:amalloc-run.1" "$prof:amalloc-prof.1"; do
  bin=${cmd%%:*}; page=${cmd#*:}
  text=$(LC_ALL=C.UTF-8 MANWIDTH=200 groff -man -Tutf8 -rLL=200n -P-cbou "$man/$page" 2>/dev/null | sed 's/\xe2\x80\x90/-/g')
  opts=$("$bin" --help 2>&1 | grep -oE '(^|[ [])--?[a-z][a-z-]*' | grep -oE -- '--?[a-z][a-z-]*' | sort -u)
  [ -n "$opts" ] || { fail "$bin --help lists no options"; continue; }
  missing=
  for o in $opts; do grep -qE -- "(^|[^a-z-])$o([^a-z-]|\$)" <<< "$text" || missing="$missing $o"; done
  [ -z "$missing" ] && pass "$page: every option of --help ($(echo $opts))" || fail "$page lacks:$missing"
done
exit $status
