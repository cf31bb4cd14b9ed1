#!/usr/bin/env bash
# run-program.sh -- run a real program's workload with glibc's malloc and with amalloc
# preloaded, and check that both runs print the same thing and that amalloc was really loaded.
#
#   run-program.sh WORKLOAD
#
# WORKLOAD: python | perl | gxx | sqlite | git | xz | zstd | mt
# Environment:
#   AMALLOC_LIB      the library to preload (required; the meson test passes libamalloc.so)
#   AM_PROGRAMS_SRC  the directory of this script's inputs (default: this script's directory)
#   AM_MT_EXE        the mt executable (the 'mt' workload)
#   AM_KEEP_TMP=1    keep the scratch directory (for debugging)
#
# Every process that the preloaded run starts (the shell's children, and theirs: cc1plus under
# g++, git's subcommands, ...) is checked through the dynamic loader's own log (LD_DEBUG=files,
# written to files with LD_DEBUG_OUTPUT, so the programs' output is untouched): each one must
# have mapped the preloaded library. Exit status: 0 pass, 1 fail (also a program missing on
# Debian as root: test/run.sh installs them), 77 skipped (a program missing elsewhere).
# shellcheck disable=SC2317  # the workload functions are called indirectly
set -euo pipefail

workload=${1:?usage: run-program.sh WORKLOAD}
lib=${AMALLOC_LIB:?AMALLOC_LIB must name the library to preload}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${AM_PROGRAMS_SRC:-$here}
case "$lib" in /*) ;; *) lib="$PWD/$lib" ;; esac
libname=$(basename "$lib")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/amalloc-$workload.XXXXXX")
if [ "${AM_KEEP_TMP:-0}" = 1 ]; then
  echo "scratch directory: $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi

# a missing program: a failure on Debian as root (test/run.sh installs it), else a skip
skip() { exec bash "$(dirname "${BASH_SOURCE[0]}")/../tool-missing.sh" "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || skip "$1"; }

# A fixed, quiet environment, the same for both runs.
export LC_ALL=C TZ=UTC PYTHONHASHSEED=0 PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0
export HOME="$tmp/home"
mkdir -p "$HOME"
unset LD_PRELOAD LD_DEBUG LD_DEBUG_OUTPUT MALLOC_CHECK_ MALLOC_PERTURB_ GLIBC_TUNABLES AM_EXPECT_PRELOAD

data="$tmp/data"   # inputs made once, read by both runs
mkdir -p "$data"

# ---- the workloads: each prints its results on stdout, runs in an empty current directory
# (the same path for both runs) and may read $data. AM_EXPECT_PRELOAD is set in the preloaded run.

prepare_python() { [ -x /usr/bin/python3 ] || skip /usr/bin/python3; }
run_python() { /usr/bin/python3 -B "$src/workload.py"; }

prepare_perl() { need perl; perl -MDigest::SHA -e1 2>/dev/null || skip "perl's Digest::SHA"; }
run_perl() { perl "$src/workload.pl"; }

prepare_gxx() { need g++; }
run_gxx() {
  local flags=(-std=c++17 -O2 -frandom-seed=amalloc)
  g++ "${flags[@]}" -S -o t.s "$src/templates.cc"
  g++ -c -o t.o t.s
  g++ -o t t.o
  echo "assembly $(sha256sum < t.s | cut -c1-64)"
  echo "binary $(sha256sum < t | cut -c1-64)"
  ./t
}

prepare_sqlite() {
  if ! command -v sqlite3 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${AM_NO_APT:-}" ]; then
      echo "sqlite3 is missing: installing it with apt-get"
      { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sqlite3 ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sqlite3; }
      } >"$tmp/apt.log" 2>&1 || true
    fi
    command -v sqlite3 >/dev/null 2>&1 || skip sqlite3
  fi
  # 50k customers, 60k orders, inserted in one transaction; then an index, a join, aggregates.
  awk 'BEGIN {
    print "PRAGMA journal_mode=WAL;";
    print "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, score REAL);";
    print "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER NOT NULL, item TEXT, qty INTEGER, price REAL);";
    print "BEGIN;";
    s = 12345;
    for (i = 1; i <= 50000; i++) {
      s = (s * 1103515245 + 12345) % 2147483648;
      printf "INSERT INTO customer VALUES(%d, '\''name-%07d-%s'\'', '\''city%d'\'', %.3f);\n", i, s % 9999991, substr("abcdefghijklmnopqrstuvwxyz", s % 26 + 1, 1 + s % 7), s % 97, (s % 100000) / 100.0;
    }
    for (i = 1; i <= 60000; i++) {
      s = (s * 1103515245 + 12345) % 2147483648;
      printf "INSERT INTO orders(customer, item, qty, price) VALUES(%d, '\''item%d'\'', %d, %.2f);\n", 1 + s % 50000, s % 500, 1 + s % 9, (s % 10000) / 100.0;
    }
    print "COMMIT;";
    print "CREATE INDEX orders_customer ON orders(customer);";
    print "CREATE INDEX customer_city ON customer(city, score);";
    print "SELECT count(*), sum(qty), printf(\"%.2f\", sum(qty * price)) FROM orders;";
    print "SELECT c.city, count(DISTINCT c.id), count(o.id), printf(\"%.2f\", sum(o.qty * o.price)) FROM customer c JOIN orders o ON o.customer = c.id GROUP BY c.city ORDER BY 4 DESC, 1 LIMIT 15;";
    print "SELECT c.name, count(*) AS n, group_concat(o.item, \",\") FROM customer c JOIN orders o ON o.customer = c.id GROUP BY c.id HAVING n >= 5 ORDER BY n DESC, c.id LIMIT 10;";
    print "SELECT item, avg(qty), max(price), min(price) FROM orders GROUP BY item ORDER BY item LIMIT 20;";
    print "SELECT city, printf(\"%.3f\", avg(score)), count(*) FROM customer WHERE score > 500 GROUP BY city ORDER BY city;";
    print "SELECT count(*) FROM customer WHERE id NOT IN (SELECT customer FROM orders);";
    print "UPDATE orders SET price = price * 1.1 WHERE qty > 5;";
    print "DELETE FROM customer WHERE id % 7 = 0;";
    print "VACUUM;";
    print "SELECT count(*), printf(\"%.2f\", sum(price)) FROM orders JOIN customer ON customer.id = orders.customer;";
    print "PRAGMA integrity_check;";
  }' > "$data/script.sql"
}
run_sqlite() {
  sqlite3 db.sqlite < "$data/script.sql"
  # a second process reopens the database
  sqlite3 db.sqlite 'SELECT count(*), sum(qty) FROM orders; PRAGMA integrity_check;'
}

prepare_git() { need git; }
run_git() {
  export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
  export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL=author@example.com
  export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL=committer@example.com
  git init -q -b main repo
  cd repo
  local i j base=1700000000
  for i in $(seq 1 50); do
    export GIT_AUTHOR_DATE="@$((base + i * 3600)) +0000" GIT_COMMITTER_DATE="@$((base + i * 3600 + 60)) +0000"
    mkdir -p "dir$((i % 5))"
    awk -v i="$i" 'BEGIN { for (n = 0; n < 200 + i * 10; n++) printf "file %d line %d value %d\n", i, n, (n * 7919 + i * 104729) % 1000003 }' > "dir$((i % 5))/file$i.txt"
    for j in $(seq 1 $((i < 5 ? i : 5))); do
      printf 'commit %d touches file %d\n' "$i" "$j" >> "dir$((j % 5))/file$j.txt"
    done
    if [ $((i % 10)) = 0 ]; then git rm -q "dir$(((i - 3) % 5))/file$((i - 3)).txt"; fi
    git add -A
    git commit -q -m "commit $i" -m "Generated content for commit number $i."
    if [ $((i % 17)) = 0 ]; then git tag -a "v$i" -m "tag $i"; fi
  done
  git gc -q --aggressive
  git log -p --stat --format=fuller | sha256sum
  git log --format='%H %T %s' | head -5
  git rev-parse HEAD HEAD~10 v17 v34
  git fsck --full --strict 2>&1
  git cat-file --batch-all-objects --batch-check | sort
  git archive --format=tar HEAD | sha256sum
  git diff --stat HEAD~40 HEAD | tail -1
  git blame -s dir1/file1.txt | sha256sum
}

prepare_xz() {
  need xz
  make_blob
}
run_xz() {
  xz -T2 -6 --block-size=2MiB -c "$data/blob" > blob.xz
  echo "xz $(sha256sum < blob.xz | cut -c1-64)"
  xz -d -T2 -c blob.xz | sha256sum
  xz -T2 -9e --block-size=1MiB -c "$data/blob" | xz -d -T2 | cmp - "$data/blob" && echo "9e round trip ok"
  xz -lv blob.xz | grep -E 'Streams|Blocks|Uncompressed size' | sort
}

prepare_zstd() {
  need zstd
  make_blob
}
run_zstd() {
  zstd -q -T2 -6 -c "$data/blob" > blob.zst
  echo "zstd $(sha256sum < blob.zst | cut -c1-64)"
  zstd -q -d -T2 -c blob.zst | sha256sum
  zstd -q -T2 -12 --long=24 -c "$data/blob" | zstd -q -d --long=24 -c | cmp - "$data/blob" && echo "12 round trip ok"
}

make_blob() {
  # ~12 MB of half-compressible text, deterministic
  awk 'BEGIN { s = 7; for (i = 0; i < 300000; i++) { s = (s * 1103515245 + 12345) % 2147483648;
         printf "%08d %s %x %s\n", i, substr("the quick brown fox jumps over the lazy dog", 1 + s % 20, 5 + s % 17), s, (i % 3 ? "alpha" : "omega") } }' > "$data/blob"
}

prepare_mt() {
  if [ -z "${AM_MT_EXE:-}" ] || [ ! -x "$AM_MT_EXE" ]; then fail "AM_MT_EXE must name the mt executable"; fi
}
run_mt() {
  "$AM_MT_EXE" 4 12000
  "$AM_MT_EXE" 2 8000
}

# ---- the driver -----------------------------------------------------------------------------
declare -F "run_$workload" >/dev/null || fail "unknown workload '$workload'"
"prepare_$workload"

# run_once MODE: runs the workload in $tmp/work (recreated, so both runs see the same paths).
# The workload runs in a background subshell so that `set -e` stays in force inside it.
run_once() {
  local mode=$1 rc=0 start end
  rm -rf "$tmp/work"
  mkdir -p "$tmp/work"
  start=$(date +%s.%N)
  (
    cd "$tmp/work"
    if [ "$mode" = preload ]; then
      mkdir -p "$tmp/ld"
      export LD_PRELOAD="$lib" LD_DEBUG=files LD_DEBUG_OUTPUT="$tmp/ld/log" AM_EXPECT_PRELOAD=1
      if [ "$workload" = perl ]; then export AM_EXPECT_PRELOAD="$libname"; fi
    fi
    "run_$workload"
  ) > "$tmp/out.$mode" 2> "$tmp/err.$mode" &
  wait $! || rc=$?
  end=$(date +%s.%N)
  echo "$mode run: exit $rc, $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s, $(wc -l < "$tmp/out.$mode") lines of output"
  return $rc
}

status=0
run_once plain || { echo "--- stdout"; tail -20 "$tmp/out.plain"; echo "--- stderr"; tail -20 "$tmp/err.plain"; fail "the workload fails with glibc's malloc: the test itself is broken"; }
run_once preload || {
  status=1
  echo "FAIL: the workload fails with $libname preloaded"
  echo "--- stderr (last 40 lines)"; tail -40 "$tmp/err.preload"
}

if ! cmp -s "$tmp/out.plain" "$tmp/out.preload"; then
  status=1
  echo "FAIL: the output differs with $libname preloaded (diff plain preload, first 60 lines):"
  diff "$tmp/out.plain" "$tmp/out.preload" | head -60 || true
else
  echo "output identical ($(wc -c < "$tmp/out.plain") bytes)"
fi
if ! cmp -s "$tmp/err.plain" "$tmp/err.preload"; then
  status=1
  echo "FAIL: stderr differs with $libname preloaded (diff plain preload, first 40 lines):"
  diff "$tmp/err.plain" "$tmp/err.preload" | head -40 || true
fi

# Was the library loaded in every (dynamically linked) process of the preloaded run? The loader
# writes one log per pid; a process that execs another program appends to the same log, so
# each "transferring control" (one per program started) must have its own link map of the lib.
nproc_seen=0
missing=()
shopt -s nullglob
for f in "$tmp"/ld/log.*; do
  started=$(grep -c 'transferring control: ' "$f" || true)
  [ "$started" -gt 0 ] || continue     # a process that died before main (should not happen)
  nproc_seen=$((nproc_seen + started))
  loaded=$(grep -cF "file=$lib [0];  generating link map" "$f" || true)
  if [ "$loaded" -lt "$started" ]; then
    missing+=("$(sed -n 's/.*transferring control: //p' "$f" | tr '\n' ' ')(pid ${f##*.})")
  fi
done
progs=$(cat "$tmp"/ld/log.* 2>/dev/null | sed -n 's/.*transferring control: //p' | sed 's|.*/||' | sort | uniq -c | sort -rn | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
if [ "$nproc_seen" = 0 ]; then
  status=1
  echo "FAIL: no process of the preloaded run was seen by the dynamic loader's log"
elif [ "${#missing[@]}" -gt 0 ]; then
  status=1
  echo "FAIL: $libname was not loaded in ${#missing[@]} of $nproc_seen processes: ${missing[*]}"
  grep -h 'cannot be preloaded' "$tmp/err.preload" | head -3 || true
else
  echo "$libname was loaded in all $nproc_seen processes of the preloaded run: $progs"
fi

if [ "$status" = 0 ]; then
  echo "PASS: $workload"
  echo "--- output"
  head -40 "$tmp/out.plain"
fi
exit $status
