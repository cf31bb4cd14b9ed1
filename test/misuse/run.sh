#!/usr/bin/env bash
# run.sh -- runs the heap-misuse programs (test/misuse/) under one or more allocators.
#
#   run.sh [PROGDIR] BUILD=LIBPATH [BUILD=LIBPATH ...]
#
#   PROGDIR        where the programs misuse-KIND are (the build directory's test/misuse;
#                  default: $MISUSE_PROGDIR, else the current directory)
#   BUILD=LIBPATH  a column of the table: the programs run with LD_PRELOAD=LIBPATH; an empty
#                  LIBPATH (glibc=) runs them with the C library's malloc. BUILD names the
#                  column of expect.txt whose claims are checked (default, secure, ...); a build
#                  without lines in expect.txt claims nothing and is only recorded.
#
# Environment:
#   MISUSE_EXPECT     the expectations file (default: expect.txt beside this script)
#   MISUSE_TABLE_OUT  also write the table as Markdown to this file
#   MISUSE_TIMEOUT    seconds per program run (default 10)
#   MISUSE_KINDS      comma-separated kinds to run (default: all of expect.txt)
#   MISUSE_VERBOSE=1  print every run's stdout details and first stderr line
#   MISUSE_PRELOAD    a library preloaded before each build's LIBPATH (test/pagesize's shim)
#
# Each program does one bad thing; if it survives it prints SURVIVED and exits 0. Outcomes:
#   stopped: MSG     died by SIGABRT with MSG on stderr (its first line: amalloc's prefix
#                    "amalloc: error: " and suffix " (pointer 0x...)" dropped, other addresses
#                    shown as 0x..., the first MISUSE_MSG_CHARS=40 characters), or exited
#                    non-zero (not 77) with a message
#   crash SIGNAME    died by a signal without a message (or by another signal than SIGABRT)
#   survived         exit 0 and SURVIVED (", warned: MSG" when it printed something on stderr)
#   timeout          still running after MISUSE_TIMEOUT seconds (killed)
#   exit N           exited otherwise;  n/a: the function to misuse does not exist (exit 77)
#   ok               a control kind (an `ok` line in expect.txt: not a misuse) exited 0 quietly;
#                    controls are left out of the counts
# Claims (expect.txt): `error: A | B` = SIGABRT, and the FIRST line of stderr is exactly
# "amalloc: error: A (pointer 0xHEX)" (or B), with HEX the pointer the program said it misuses
# (its last stdout line "pointer: 0x...", printed by aim() in misuse.h just before the misuse);
# `crash` = died by a signal; `ok` = exit 0, SURVIVED, empty stderr; `none` = no claim.
# Exit status: 0 when every claim holds, 1 when one does not, 2 on a usage or setup error.
set -u
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
expect_file=${MISUSE_EXPECT:-$here/expect.txt}
progdir=${MISUSE_PROGDIR:-.}
per_run_timeout=${MISUSE_TIMEOUT:-10}
verbose=${MISUSE_VERBOSE:-0}
msg_chars=${MISUSE_MSG_CHARS:-40}

usage() { sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "run.sh: $*" >&2; exit 2; }

builds=()
libs=()
for arg in "$@"; do
  case $arg in
    -h|--help) usage; exit 0 ;;
    *=*)
      name=${arg%%=*}
      lib=${arg#*=}
      [[ $name =~ ^[A-Za-z0-9_.+-]+$ ]] || die "bad build name in '$arg'"
      if [[ -n $lib ]]; then
        [[ -f $lib ]] || die "$name: no such library: $lib"
        lib=$(realpath "$lib")
      fi
      builds+=("$name")
      libs+=("$lib")
      ;;
    *) progdir=$arg ;;
  esac
done
(( ${#builds[@]} > 0 )) || { usage >&2; exit 2; }
[[ -d $progdir ]] || die "no such program directory: $progdir"
progdir=$(realpath "$progdir")
[[ -f $expect_file ]] || die "no expectations file: $expect_file"
command -v timeout >/dev/null || die "timeout(1) is missing"

# ---- expect.txt ------------------------------------------------------------------------------
declare -A expect=()
kinds=()
declare -A known=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
  lineno=$((lineno + 1))
  line=${line%%#*}
  [[ $line =~ ^[[:space:]]*$ ]] && continue
  read -r kind build rest <<<"$line"
  [[ -n ${rest:-} ]] || die "$expect_file:$lineno: expected 'kind build expectation'"
  case $rest in
    none|crash|ok|"error: "?*) ;;
    *) die "$expect_file:$lineno: unknown expectation '$rest'" ;;
  esac
  [[ -z ${expect[$kind|$build]:-} ]] || die "$expect_file:$lineno: second line for $kind $build"
  expect[$kind|$build]=$rest
  if [[ -z ${known[$kind]:-} ]]; then
    known[$kind]=1
    kinds+=("$kind")
  fi
done <"$expect_file"

# Every kind has its program, and every program has its kind.
for kind in "${kinds[@]}"; do
  [[ -x $progdir/misuse-$kind ]] || die "no program $progdir/misuse-$kind"
done
for exe in "$progdir"/misuse-*; do
  [[ -f $exe && -x $exe ]] || continue
  kind=${exe##*/misuse-}
  [[ -n ${known[$kind]:-} ]] || die "program misuse-$kind has no line in $expect_file"
done

# A control kind (an `ok` line for some build) is not a misuse: not counted in the totals.
declare -A control=()
for key in "${!expect[@]}"; do
  [[ ${expect[$key]} == ok ]] && control[${key%%|*}]=1
done

if [[ -n ${MISUSE_KINDS:-} ]]; then
  IFS=, read -r -a only <<<"$MISUSE_KINDS"
  for kind in "${only[@]}"; do
    [[ -n ${known[$kind]:-} ]] || die "MISUSE_KINDS: unknown kind $kind"
  done
  kinds=("${only[@]}")
fi

# ---- running ---------------------------------------------------------------------------------
# glibc's malloc debugging variables (meson test sets MALLOC_PERTURB_) would change the glibc
# column: the programs run without them.
unset MALLOC_PERTURB_ MALLOC_CHECK_

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ulimit -c 0 2>/dev/null || true

# The first non-empty line of a file, for a table cell: addresses replaced by 0x..., amalloc's
# "amalloc: error: " prefix and " (pointer 0x...)" suffix dropped, cut to MISUSE_MSG_CHARS (40).
first_message() {
  local l
  l=$(grep -m1 -v '^[[:space:]]*$' "$1" 2>/dev/null | sed -E 's/0x[0-9a-fA-F]+/0x.../g;
    s/^amalloc: error: //; s/ \(pointer 0x...\)$//')
  printf '%s' "${l:0:$msg_chars}"
}

# Is the first line of stderr ($1) exactly "amalloc: error: ALT (pointer 0xHEX)" for one of the
# ` | `-separated ALTs ($3), with HEX the pointer of the program's "pointer: 0x..." line on
# stdout ($2)? On failure, `why` says what was wrong.
why=""
has_error() {
  local err=$1 out=$2 alts=$3 alt line what ptr aimed
  why=""
  line=$(head -n 1 "$err")
  local re='^amalloc: error: (.+) \(pointer (0x[0-9a-f]+)\)$'
  if ! [[ $line =~ $re ]]; then
    why="the first line of stderr is not 'amalloc: error: <fn>: <problem> (pointer 0x<hex>)'"
    return 1
  fi
  what=${BASH_REMATCH[1]}
  ptr=${BASH_REMATCH[2]}
  aimed=$(sed -n 's/^pointer: \(0x[0-9a-fA-F]*\)$/\1/p' "$out" | tail -n 1)
  if [[ -z $aimed ]]; then
    why="the program printed no 'pointer: 0x...' line (aim() in misuse.h)"
    return 1
  fi
  if (( ptr != aimed )); then
    why="the message names pointer $ptr, the program misused $aimed"
    return 1
  fi
  while [[ -n $alts ]]; do
    alt=${alts%% | *}
    if [[ $alts == *" | "* ]]; then alts=${alts#* | }; else alts=""; fi
    alt=${alt#"${alt%%[![:space:]]*}"}
    alt=${alt%"${alt##*[![:space:]]}"}
    [[ $what == "$alt" ]] && return 0
  done
  why="the message is '$what'"
  return 1
}

declare -A cell=() verdict=() reason=()
declare -A n_stopped=() n_crash=() n_survived=() n_other=() n_claims=() n_failed=()
failures=()
start=$SECONDS

for b in "${!builds[@]}"; do
  build=${builds[$b]}
  lib=${libs[$b]}
  n_stopped[$build]=0; n_crash[$build]=0; n_survived[$build]=0; n_other[$build]=0
  n_claims[$build]=0; n_failed[$build]=0
  for kind in "${kinds[@]}"; do
    exe=$progdir/misuse-$kind
    out=$tmp/$build.$kind.out
    err=$tmp/$build.$kind.err
    # The subshell reaps the program, so bash's "Aborted"/"Segmentation fault" notices go to
    # its /dev/null instead of our stderr. timeout re-raises the child's signal: rc = 128+N.
    if [[ -n $lib ]]; then
      ( timeout -k 2 "$per_run_timeout" env LD_PRELOAD="${MISUSE_PRELOAD:+$MISUSE_PRELOAD }$lib" "$exe" </dev/null >"$out" 2>"$err"
        exit $? ) 2>/dev/null
    else
      ( timeout -k 2 "$per_run_timeout" env -u LD_PRELOAD "$exe" </dev/null >"$out" 2>"$err"
        exit $? ) 2>/dev/null
    fi
    rc=$?
    msg=$(first_message "$err")
    sig=0
    if (( rc == 124 )); then
      c="timeout"; k=other
    elif (( rc > 128 && rc <= 128 + 64 )); then
      sig=$((rc - 128))
      signame=SIG$(kill -l "$sig" 2>/dev/null || echo "$sig")
      if (( sig == 6 )) && [[ -n $msg ]]; then
        c="stopped: $msg"; k=stopped
      else
        c="crash $signame"; k=crash
      fi
    elif [[ -n ${control[$kind]:-} ]] && (( rc == 0 )) && grep -qx SURVIVED "$out" && [[ ! -s $err ]]; then
      c="ok"; k=control
    elif (( rc == 0 )) && grep -qx SURVIVED "$out"; then
      k=survived
      if [[ -n $msg ]]; then c="survived, warned: $msg"; else c="survived"; fi
    elif (( rc == 77 )); then
      c="n/a"; k=other
    elif (( rc != 0 )) && [[ -n $msg ]]; then
      c="stopped: $msg (exit $rc)"; k=stopped
    else
      c="exit $rc"; k=other
    fi

    exp=${expect[$kind|$build]:-none}
    ok=1
    why=""
    case $exp in
      none) ;;
      crash) (( sig != 0 )) || ok=0 ;;
      ok) { (( rc == 0 )) && grep -qx SURVIVED "$out" && [[ ! -s $err ]]; } || ok=0 ;;
      "error: "*)
        if (( sig != 6 )); then ok=0; why="not killed by SIGABRT (status $rc)"
        elif ! has_error "$err" "$out" "${exp#error: }"; then ok=0
        fi ;;
    esac
    reason[$build|$kind]=$why
    if [[ $exp != none ]]; then
      n_claims[$build]=$((n_claims[$build] + 1))
      if (( ok == 0 )); then
        n_failed[$build]=$((n_failed[$build] + 1))
        failures+=("$build|$kind")
      fi
    fi
    cell[$build|$kind]=$c
    verdict[$build|$kind]=$ok
    [[ -n ${control[$kind]:-} ]] && k=control
    case $k in
      control) ;;
      stopped) n_stopped[$build]=$((n_stopped[$build] + 1)) ;;
      crash) n_crash[$build]=$((n_crash[$build] + 1)) ;;
      survived) n_survived[$build]=$((n_survived[$build] + 1)) ;;
      *) n_other[$build]=$((n_other[$build] + 1)) ;;
    esac
    if [[ $verbose == 1 ]]; then
      printf '%-10s %-32s rc=%-3s %s\n' "$build" "$kind" "$rc" "$c"
      grep '^detail: ' "$out" | sed 's/^/    /'
    fi
  done
done

# ---- the table -------------------------------------------------------------------------------
nk=0
for kind in "${kinds[@]}"; do [[ -n ${control[$kind]:-} ]] || nk=$((nk + 1)); done
mark() { [[ ${verdict[$1]} == 1 ]] && printf '' || printf ' FAIL'; }

declare -A width=()
for build in "${builds[@]}"; do
  w=${#build}
  for kind in "${kinds[@]}"; do
    c="${cell[$build|$kind]}$(mark "$build|$kind")"
    (( ${#c} > w )) && w=${#c}
  done
  width[$build]=$w
done
printf '\n%-32s' "kind"
for build in "${builds[@]}"; do printf ' | %-*s' "${width[$build]}" "$build"; done
printf '\n%s' "--------------------------------"
for build in "${builds[@]}"; do
  printf ' | %s' "$(printf '%*s' "${width[$build]}" '' | tr ' ' -)"
done
printf '\n'
for kind in "${kinds[@]}"; do
  printf '%-32s' "$kind"
  for build in "${builds[@]}"; do
    printf ' | %-*s' "${width[$build]}" "${cell[$build|$kind]}$(mark "$build|$kind")"
  done
  printf '\n'
done
printf '\n'
for build in "${builds[@]}"; do
  printf '%s: %d of %d misuse kinds stopped with a message, %d crashed, %d survived, %d other; ' \
    "$build" "${n_stopped[$build]}" "$nk" "${n_crash[$build]}" "${n_survived[$build]}" \
    "${n_other[$build]}"
  printf 'claims: %d checked, %d failed\n' "${n_claims[$build]}" "${n_failed[$build]}"
done

if [[ -n ${MISUSE_TABLE_OUT:-} ]]; then
  {
    md() { local s=$1; s=${s//|/\\|}; printf '%s' "$s"; }
    printf '| kind |'
    for build in "${builds[@]}"; do printf ' %s |' "$build"; done
    printf '\n| --- |'
    for build in "${builds[@]}"; do printf ' --- |'; done
    printf '\n'
    for kind in "${kinds[@]}"; do
      printf "| \`%s\` |" "$kind"
      for build in "${builds[@]}"; do
        c=$(md "${cell[$build|$kind]}")
        [[ ${verdict[$build|$kind]} == 1 ]] || c="$c **(claim failed)**"
        printf ' %s |' "$c"
      done
      printf '\n'
    done
    for row in stopped crash survived other; do
      case $row in
        stopped) printf '| **stopped with a message** |' ;;
        crash) printf '| **crashed by a signal** |' ;;
        survived) printf '| **survived** |' ;;
        other) printf '| **other (timeout, exit, n/a)** |' ;;
      esac
      for build in "${builds[@]}"; do
        case $row in
          stopped) v=${n_stopped[$build]} ;;
          crash) v=${n_crash[$build]} ;;
          survived) v=${n_survived[$build]} ;;
          other) v=${n_other[$build]} ;;
        esac
        printf ' **%d** of %d |' "$v" "$nk"
      done
      printf '\n'
    done
  } >"$MISUSE_TABLE_OUT" || die "cannot write $MISUSE_TABLE_OUT"
  echo "Markdown table written to $MISUSE_TABLE_OUT"
fi

# ---- failed claims ---------------------------------------------------------------------------
if (( ${#failures[@]} > 0 )); then
  printf '\n%d claim(s) not met:\n' "${#failures[@]}"
  for f in "${failures[@]}"; do
    build=${f%%|*}
    kind=${f#*|}
    printf '  %s under %s: expected "%s", got "%s"\n' "$kind" "$build" "${expect[$kind|$build]}" \
      "${cell[$build|$kind]}"
    [[ -n ${reason[$build|$kind]} ]] && printf '      why: %s\n' "${reason[$build|$kind]}"
    sed -n '1,3p' "$tmp/$build.$kind.err" | sed 's/^/      stderr: /'
    grep -v '^SURVIVED$' "$tmp/$build.$kind.out" | sed -n '1,3p' | sed 's/^/      stdout: /'
  done
  printf '(%d s)\n' $((SECONDS - start))
  exit 1
fi
printf 'all claims met (%d s)\n' $((SECONDS - start))
exit 0
