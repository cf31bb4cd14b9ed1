#!/usr/bin/env bash
# static.sh STATIC_BIN -- the heap profiler's stacks in a fully static program (static.c): the
# line of the block static_top -> static_mid -> static_leaf allocated, named from the binary's
# symbol table (nm), must read static_leaf static_mid static_top main, in that order.
set -u
bin=$1
command -v nm >/dev/null || exec bash "$(dirname "${BASH_SOURCE[0]}")/../tool-missing.sh" nm
out=$(mktemp -d /tmp/amalloc-static-prof.XXXXXX)
trap 'rm -rf "$out"' EXIT
if ! AMALLOC_PROF=1 AMALLOC_PROF_SAMPLE=1 "$bin" "$out/p.heap"; then
  echo "FAIL: the static program failed"; exit 1
fi
nm -n "$bin" > "$out/syms"
# each line's frames, each named by the function symbol at or below (address - 1)
python3 - "$out/syms" "$out/p.heap" <<'PY'
import bisect, sys
syms = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 3 and f[1] in 'tT':
        syms.append((int(f[0], 16), f[2]))
addrs = [a for a, _ in syms]
def name(x):
    i = bisect.bisect_right(addrs, x - 1) - 1
    return syms[i][1] if i >= 0 else '?'
stacks = []
for line in list(open(sys.argv[2]))[1:]:
    if line.startswith('MAPPED_LIBRARIES:') or '@' not in line:
        break
    stacks.append([name(int(a, 16)) for a in line.split('@', 1)[1].split()])
want = ['static_leaf', 'static_mid', 'static_top', 'main']
for s in stacks:
    if s[:4] == want:
        print('ok:', ' '.join(s))
        sys.exit(0)
print("FAIL: no stack 'static_leaf static_mid static_top main' in the profile; its stacks:")
for s in stacks[:20]:
    print('  ', ' '.join(s) or '(none)')
sys.exit(1)
PY
