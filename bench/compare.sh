#!/usr/bin/env bash
# compare.sh -- compare amalloc with glibc and the other allocators: micro benchmarks, workload
# programs, real programs under LD_PRELOAD, and instruction counts per malloc+free.
#
#   bench/compare.sh [--quick] [--runs N] [--only NAME[,..]] [--alloc NAME[,..]]
#                    [--add NAME=/path/lib.so] [--prof] [--no-micro] [--no-real] [--no-icount]
#
#   --quick        1 run, short inputs, short micro benchmarks (a few minutes at most)
#   --runs N       interleaved runs per workload and allocator (default 5; --quick: 1)
#   --only LIST    only these workloads / real programs; "micro" and "icount" name the micro
#                  benchmarks and instruction counts, which are otherwise left out with --only
#   --alloc LIST   only these allocators (glibc, amalloc, mimalloc, jemalloc, tcmalloc; glibc is
#                  always run: it is the reference for checksums and ratios)
#   --add N=PATH   also run the allocator in PATH (any malloc-replacing .so) under the name N;
#                  may be repeated
#   --prof         also run amalloc with its heap profiler on at the default period
#                  (AMALLOC_PROF=1, no dump) as the allocator "amalloc-prof": workloads and real
#                  programs only (the micro benchmarks and instruction counts measure it off)
#   --no-micro     skip the google-benchmark micro benchmarks
#   --no-real      skip the real programs (python3, sqlite3, g++, redis)
#   --no-icount    skip the callgrind instruction counts
#
# Builds amalloc in build-bench (release; AMALLOC_BENCH_BUILD overrides) and the benchmark
# programs in build-bench/bench-bin, installs missing peers with apt-get when root (otherwise
# skips them), runs every workload under each allocator interleaved (A B C .., A B C .., ...),
# checks every run's checksum against glibc's, and prints medians of wall time, peak RSS and minor
# page faults with ratios to glibc and mimalloc and their geometric means (runner.c measures all
# three with wait4). Results: bench/results/latest.csv (+ a dated copy), latest-raw.tsv (every
# run), latest.png (time and RSS ratios), frag-rss.png and waves-rss.png (RSS over time of the
# frag and waves workloads), micro-latest.csv, icount-latest.csv. Exit status 1 if any run failed
# or any checksum differed from glibc's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench=$root/bench

quick=0 runs= only= allocs= adds=() micro=1 real=1 icount=1 prof=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --runs) runs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --alloc) allocs=$2; shift 2 ;;
    --add) adds+=("$2"); shift 2 ;;
    --prof) prof=1; shift ;;
    --no-micro) micro=0; shift ;;
    --no-real) real=0; shift ;;
    --no-icount) icount=0; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$runs" ] || runs=$([ $quick = 1 ] && echo 1 || echo 5)
case "$runs" in ''|*[!0-9]*|0) echo "compare.sh: --runs needs a positive number" >&2; exit 2 ;; esac
if [ $quick = 1 ]; then scale=0.1; else scale=1; fi

in_list() { # in_list WORD COMMA-LIST
  case ",$2," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}
selected() { [ -z "$only" ] || in_list "$1" "$only"; }
log() { echo "== $*" >&2; }

# ---- tools and peers --------------------------------------------------------------------------
libdir=/usr/lib/x86_64-linux-gnu
need=()
command -v meson >/dev/null || need+=(meson)
command -v ninja >/dev/null || need+=(ninja-build)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v g++ >/dev/null || need+=(g++)
[ -e $libdir/libjemalloc.so.2 ] || need+=(libjemalloc2)
[ -e $libdir/libmimalloc.so.2 ] || need+=(libmimalloc2.0)
[ -e $libdir/libtcmalloc_minimal.so.4 ] || need+=(libtcmalloc-minimal4)
[ $micro = 0 ] || [ -e /usr/include/benchmark/benchmark.h ] || need+=(libbenchmark-dev)
[ $icount = 0 ] || { command -v valgrind >/dev/null && [ -e /usr/include/valgrind/callgrind.h ]; } || need+=(valgrind)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if [ $real = 1 ]; then
  command -v sqlite3 >/dev/null || need+=(sqlite3)
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v redis-benchmark >/dev/null || need+=(redis-tools)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing ${need[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/dev/null 2>&1 ||
      log "apt-get failed for some of: ${need[*]} (what is missing is skipped)"
  else
    log "not root, not installing: ${need[*]} (what is missing is skipped)"
  fi
fi

# ---- build ------------------------------------------------------------------------------------
build=${AMALLOC_BENCH_BUILD:-build-bench}
log "building amalloc in $build (release)"
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release -Dtests=false >/dev/null
meson compile -C "$build" >/dev/null
bin=$root/$build/bench-bin
mkdir -p "$bin"
cflags=(-O2 -g -Wall -pthread)
for src in "$bench"/workloads/*.c "$bench"/mixed.c "$bench"/runner.c; do
  exe=$bin/$(basename "$src" .c)
  if [ ! -x "$exe" ] || [ "$src" -nt "$exe" ] || [ "$bench/workloads/common.h" -nt "$exe" ]; then
    cc "${cflags[@]}" -o "$exe" "$src"
  fi
done
have_micro=0 have_icount=0
if [ $micro = 1 ] && [ -e /usr/include/benchmark/benchmark.h ]; then
  g++ -O2 -std=gnu++17 -Wall -pthread -I"$root/include" -I"$bench/micro" -c "$bench/micro/micro.cc" -o "$bin/micro.o"
  cc -O2 -Wall -I"$root/include" -c "$bench/micro/alloctab.c" -o "$bin/alloctab.o"
  g++ -o "$bin/micro" "$bin/micro.o" "$bin/alloctab.o" "$build/libamalloc-api.a" -lbenchmark -lpthread -ldl
  have_micro=1
elif [ $micro = 1 ]; then
  log "google-benchmark (libbenchmark-dev) missing: micro benchmarks skipped"
fi
if [ $icount = 1 ] && command -v valgrind >/dev/null && [ -e /usr/include/valgrind/callgrind.h ]; then
  cc -O2 -g -Wall -I"$root/include" -I"$bench/micro" -o "$bin/icount" "$bench/micro/icount.c" \
    "$bench/micro/alloctab.c" "$build/libamalloc-api.a" -lpthread -ldl
  have_icount=1
elif [ $icount = 1 ]; then
  log "valgrind missing: instruction counts skipped"
fi

# ---- allocators -------------------------------------------------------------------------------
declare -A lib
names=(glibc)
lib[glibc]=""
want() { [ -z "$allocs" ] || in_list "$1" "$allocs"; }
if want amalloc; then names+=(amalloc); lib[amalloc]=$root/$build/libamalloc.so.0; fi
for peer in mimalloc:libmimalloc.so.2 jemalloc:libjemalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
  n=${peer%%:*} f=$libdir/${peer#*:}
  want "$n" || continue
  if [ -e "$f" ]; then names+=("$n"); lib[$n]=$f; else log "$n not installed: skipped"; fi
done
extra=
for a in "${adds[@]+"${adds[@]}"}"; do
  n=${a%%=*} f=${a#*=}
  if [ "$n" = "$a" ] || [ -z "$n" ]; then echo "compare.sh: --add wants NAME=/path/lib.so" >&2; exit 2; fi
  if [ ! -e "$f" ]; then log "$f not found: $n skipped"; continue; fi
  f=$(readlink -f "$f")
  names+=("$n"); lib[$n]=$f
  extra=${extra:+$extra,}$n=$f
done
export AMB_EXTRA=$extra
# the allocators the micro benchmarks and instruction counts load (amalloc-prof is amalloc's
# library with an environment variable: run only as a program's allocator)
lib_csv=$(IFS=,; echo "${names[*]}")
if [ $prof = 1 ] && want amalloc; then names+=(amalloc-prof); lib[amalloc-prof]=${lib[amalloc]}; fi
alloc_csv=$(IFS=,; echo "${names[*]}")
log "allocators: ${names[*]}"

tmp=$(mktemp -d /tmp/amalloc-bench.XXXXXX)
redis_pid=
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
results=$bench/results
mkdir -p "$results"
stamp=$(date +%Y%m%d-%H%M%S)
status=0

# ---- micro benchmarks -------------------------------------------------------------------------
if [ $have_micro = 1 ] && { [ -z "$only" ] || in_list micro "$only"; }; then
  log "micro benchmarks (google-benchmark, all allocators in one process)"
  margs=(--alloc="$lib_csv" --benchmark_out="$tmp/micro.csv" --benchmark_out_format=csv)
  [ $quick = 1 ] && margs+=(--quick)
  if "$bin/micro" "${margs[@]}" > "$tmp/micro.txt" 2> "$tmp/micro.err"; then
    cp "$tmp/micro.csv" "$results/micro-latest.csv"
    cp "$tmp/micro.csv" "$results/micro-$stamp.csv"
    /usr/bin/python3 "$bench/report.py" micro "$tmp/micro.csv" "$lib_csv"
  else
    log "micro benchmarks failed:"; tail -5 "$tmp/micro.err" >&2; status=1
  fi
fi

# ---- workloads and real programs --------------------------------------------------------------
workloads=(server mixed trees interp strings batch frag waves threadchurn bigblocks prodcons growheap
  cyclic largerepl buffers larson thrash thrash-passive thrash1 simple simple2 mixed1)
reals=()
if [ $real = 1 ]; then
  [ -x /usr/bin/python3 ] && reals+=(python)
  command -v sqlite3 >/dev/null && reals+=(sqlite) || log "sqlite3 missing: skipped"
  command -v g++ >/dev/null && reals+=(gxx)
  if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null; then
    reals+=(redis)
  else
    log "redis-server / redis-tools missing: skipped"
  fi
fi
todo=()
for w in "${workloads[@]}" "${reals[@]+"${reals[@]}"}"; do selected "$w" && todo+=("$w"); done
if [ -n "$only" ]; then
  for w in ${only//,/ }; do
    case " ${todo[*]+"${todo[*]}"} micro icount " in *" $w "*) ;; *) log "--only: unknown or unavailable: $w" ;; esac
  done
fi

# inputs of the real programs
if [ $quick = 1 ]; then gxx_n=3 redis_n=30000; else gxx_n=10 redis_n=200000; fi
"$bench/real/sqlwork.sh" "$([ $quick = 1 ] && echo 0.25 || echo 1)" > "$tmp/work.sql"
# redis-server links jemalloc; "glibc" for it means glibc's malloc preloaded ahead of jemalloc
redis_glibc=""
if command -v redis-server >/dev/null && ldd "$(command -v redis-server)" 2>/dev/null | grep -q jemalloc; then
  redis_glibc=$(ldd "$(command -v redis-server)" | awk '$1 == "libc.so.6" {print $3}')
fi

free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo 26379
}

# run_redis PRELOAD -> writes "secs kib code faults" to $tmp/res (time of the client; peak RSS and
# minor faults of the server), checksum to $tmp/out, req/s to $tmp/extra
run_redis() {
  local pre=$1 port ok=0 code=0
  port=$(free_port)
  "$bin/runner" "$tmp/res.srv" "$pre" timeout 300 redis-server --port "$port" --bind 127.0.0.1 \
    --save '' --appendonly no --daemonize no --protected-mode yes --loglevel warning \
    > "$tmp/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do
    if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then ok=1; break; fi
    sleep 0.1
  done
  : > "$tmp/out"; echo 0 > "$tmp/extra"
  if [ $ok = 1 ]; then
    "$bin/runner" "$tmp/res.cli" "" timeout 120 redis-benchmark -h 127.0.0.1 -p "$port" -n "$redis_n" \
      -r 100000 -c 20 -P 16 -d 256 -q --csv -t set,get,incr,lpush,lpop,sadd,hset,zadd,lrange_100 \
      > "$tmp/rb.csv" 2>/dev/null || code=$?
    # a deterministic check of the server's state
    redis-cli -h 127.0.0.1 -p "$port" flushall >/dev/null
    redis-cli -h 127.0.0.1 -p "$port" eval "for i = 1, 20000 do redis.call('rpush', 'l', string.rep('x', i % 300)) \
      redis.call('hset', 'h', 'f' .. i, i) end redis.call('ltrim', 'l', 100, 15000) \
      return {redis.call('llen', 'l'), redis.call('hlen', 'h'), redis.call('strlen', 'nokey')}" 0 \
      2>&1 | tr '\n' ' ' > "$tmp/out" || true
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  fi
  for _ in $(seq 100); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=
  if [ $ok = 1 ] && [ -s "$tmp/res.cli" ] && [ -s "$tmp/res.srv" ]; then
    local secs kib flt tests
    read -r secs _ _ _ < "$tmp/res.cli"
    read -r _ kib _ flt < "$tmp/res.srv"
    tests=$(grep -c '^"[A-Z]' "$tmp/rb.csv" || true)
    echo "$secs $kib $code ${flt:-0}" > "$tmp/res"
    awk -v s="$secs" -v n="$redis_n" -v t="$tests" 'BEGIN { printf "%.0f\n", (s > 0 ? n * t / s : 0) }' > "$tmp/extra"
  else
    echo "0 0 1 0" > "$tmp/res"
  fi
}

# run_one NAME ALLOC RUN: one measured run; appends a line to $tmp/raw.tsv
run_one() {
  local w=$1 a=$2 r=$3 kind=workload pre=${lib[$2]} cks code=0
  # (local -x: the variable is exported to this run's commands only)
  if [ "$a" = amalloc-prof ]; then local -x AMALLOC_PROF=1; fi
  : > "$tmp/out"; echo "" > "$tmp/extra"; rm -f "$tmp/res"
  case $w in
    python) kind=real
      "$bin/runner" "$tmp/res" "$pre" /usr/bin/python3 "$bench/real/pywork.py" "$scale" > "$tmp/out" 2>"$tmp/err" || code=$? ;;
    sqlite) kind=real
      "$bin/runner" "$tmp/res" "$pre" sqlite3 :memory: < "$tmp/work.sql" > "$tmp/out" 2>"$tmp/err" || code=$? ;;
    gxx) kind=real
      rm -f "$tmp/t.o"
      "$bin/runner" "$tmp/res" "$pre" g++ -O2 -c -frandom-seed=amb -DAMB_N=$gxx_n "$bench/real/templates.cc" \
        -o "$tmp/t.o" > "$tmp/err" 2>&1 || code=$?
      [ -f "$tmp/t.o" ] && md5sum < "$tmp/t.o" > "$tmp/out" ;;
    redis) kind=real
      if [ "$a" = glibc ]; then pre=$redis_glibc; fi
      run_redis "$pre" ;;
    mixed)
      "$bin/runner" "$tmp/res" "$pre" "$bin/mixed" 2 "$(awk -v s="$scale" 'BEGIN { print 3 * s }')" > "$tmp/out" 2>"$tmp/err" || code=$? ;;
    mixed1) kind=scaling   # mixed with one thread: the 1 -> 2 thread scaling (not in the geomeans)
      "$bin/runner" "$tmp/res" "$pre" "$bin/mixed" 1 "$(awk -v s="$scale" 'BEGIN { print 3 * s }')" > "$tmp/out" 2>"$tmp/err" || code=$? ;;
    larson)    # 2 chains of threads handing their arrays on
      "$bin/runner" "$tmp/res" "$pre" "$bin/larson" "$scale" 2 > "$tmp/out" 2>"$tmp/err" || code=$? ;;
    thrash|thrash-passive|thrash1)    # active false sharing on 2 threads, passive on 2, active on 1
      local mode=active nt=2
      [ $w = thrash-passive ] && mode=passive
      [ $w = thrash1 ] && nt=1
      "$bin/runner" "$tmp/res" "$pre" "$bin/thrash" "$scale" $mode $nt > "$tmp/out" 2>"$tmp/err" || code=$? ;;
    simple|simple2)    # 1 thread (in the main thread) or 2
      "$bin/runner" "$tmp/res" "$pre" "$bin/simple" "$scale" "$([ $w = simple2 ] && echo 2 || echo 1)" \
        > "$tmp/out" 2>"$tmp/err" || code=$? ;;
    frag|waves)
      AMB_RSS_LOG=$tmp/$w-rss.$a.$r AMB_RSS_MS=$([ $quick = 1 ] && echo 5 || echo 20) \
        "$bin/runner" "$tmp/res" "$pre" "$bin/$w" "$scale" > "$tmp/out" 2>"$tmp/err" || code=$? ;;
    *)
      "$bin/runner" "$tmp/res" "$pre" "$bin/$w" "$scale" > "$tmp/out" 2>"$tmp/err" || code=$? ;;
  esac
  local secs=0 kib=0 rc=1 flt=0
  [ -s "$tmp/res" ] && read -r secs kib rc flt < "$tmp/res"
  cks=$(grep -m1 -o 'checksum .*' "$tmp/out" 2>/dev/null || head -c 200 "$tmp/out" | tr '\t\n' '  ')
  local st=ok
  if [ "$rc" != 0 ] || [ -z "$cks" ]; then
    st=failed
    log "$w under $a: failed (exit $rc)"; tail -3 "$tmp/err" 2>/dev/null >&2 || true
  elif [ "$a" = glibc ] && [ -z "${ref[$w]:-}" ]; then
    ref[$w]=$cks
  elif [ "$cks" != "${ref[$w]:-}" ]; then
    st=checksum
    log "$w under $a: checksum '$cks' differs from glibc's '${ref[$w]:-none}'"
  fi
  [ $st = ok ] || status=1
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$w" "$a" "$r" "$secs" "$kib" "${flt:-0}" "$st" \
    "$(cat "$tmp/extra")" >> "$tmp/raw.tsv"
}

declare -A ref
: > "$tmp/raw.tsv"
if [ ${#todo[@]} -gt 0 ]; then
  log "workloads: ${todo[*]}; $runs run(s) each, allocators interleaved"
  for ((r = 1; r <= runs; r++)); do
    for w in "${todo[@]}"; do
      for a in "${names[@]}"; do
        run_one "$w" "$a" "$r"
      done
    done
    log "run $r/$runs done"
  done
  cp "$tmp/raw.tsv" "$results/latest-raw.tsv"
  /usr/bin/python3 "$bench/report.py" table "$tmp/raw.tsv" "$alloc_csv" "$results" "$stamp" "$tmp" \
    "$([ $quick = 1 ] && echo quick || echo full), $runs run(s), $(nproc) cores"
fi

# ---- instruction counts -----------------------------------------------------------------------
if [ $have_icount = 1 ] && { [ -z "$only" ] || in_list icount "$only"; }; then
  log "instruction counts (callgrind)"
  sizes=(16 64 256) n1=20000 n2=120000
  : > "$tmp/icount.tsv"
  export GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384
  for a in $("$bin/icount" --list 2>/dev/null); do
    in_list "$a" "$lib_csv" || continue
    for n in $n1 $n2; do
      mkdir -p "$tmp/cg.$a.$n"
      valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$a.$n/out" "$bin/icount" "$a" "$n" "${sizes[@]}" \
        > /dev/null 2> "$tmp/cg.err" || { log "callgrind failed for $a"; tail -3 "$tmp/cg.err" >&2; }
      for f in "$tmp/cg.$a.$n"/out.*; do
        [ -e "$f" ] || continue
        awk -v a="$a" -v n="$n" '/^desc: Trigger: Client Request: size-/ { split($0, x, "size-"); s = x[2] }
          /^(totals|summary):/ { t = $2 } END { if (s != "") print a "\t" s "\t" n "\t" t }' "$f" >> "$tmp/icount.tsv"
      done
    done
  done
  unset GLIBC_TUNABLES
  /usr/bin/python3 "$bench/report.py" icount "$tmp/icount.tsv" "$lib_csv" "$results" "$stamp" "$((n2 - n1))"
fi

exit $status
