#!/usr/bin/python3
"""test/prof/check.py -- tests of amalloc-prof (tools/amalloc-prof.py) on synthetic profiles.

    check.py TOOL SYNTH SYNTH_NOPIE LIBSYNTH SRCDIR CASE

synth (test/prof/synth.c) writes a profile of its own real return addresses and maps with the
counts that SPEC below gives; each CASE runs amalloc-prof on it and compares what it prints
with what SPEC implies (the heap_v2 scaling computed here independently). Exit 0: passed;
1: failed (the reasons on stderr); 77: skipped (never: every tool used is in binutils).
"""

import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

TOOL, SYNTH, SYNTH_NOPIE, LIBSYNTH, SRCDIR, CASE = sys.argv[1:7]
PERIOD = 524288

# name: (live samples, live bytes, alloc samples, alloc bytes), raw as the allocator writes them.
# a's blocks are small (64 bytes: each stands for ~8192), b's large (4 MiB: each for ~1): b has
# 6500 x a's raw live bytes but a's estimate is the larger, so a table that forgot the scaling
# ranks them the other way.
SPEC = {
    'a': (20, 1280, 50, 3200),
    'b': (2, 8 << 20, 3, 12 << 20),
    'wrap': (0, 0, 100, 409600),        # all freed: only in the allocated view
    'lib': (5, 100000, 5, 100000),
    'cxx': (3, 3000, 3, 3000),
    'deep': (1, 1000000, 1, 1000000),
    'wild': (1, 200000, 1, 200000),
    'none': (1, 300000, 1, 300000),
}
# what the table names each stack's site (synth.c's header comment says why); wild's innermost
# kept frame is 0x20101 - 1 in the fake libgone.so.1 mapped at 0x20000 from file offset 0x1000
GONE_OFF = 0x20101 - 1 - 0x20000 + 0x1000
SITE = {'a': 'site_a', 'b': 'site_b', 'wrap': 'site_c', 'lib': 'lib_inner [libsynth.so]',
        'deep': 'deep', 'wild': f'libgone.so.1+0x{GONE_OFF:x}', 'none': '[unknown]',
        'cxx': 'ns::Box<int>::grow(synth_trace_t*)'}

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f'FAIL: {what}', file=sys.stderr)
    return cond


def est(n, nbytes):
    """(blocks, bytes) estimated: each sampled block of mean size m stands for
    1 / (1 - exp(-m / PERIOD)) blocks (the contract's heap_v2 rule)."""
    if n == 0:
        return 0.0, 0.0
    f = 1.0 / (1.0 - math.exp(-(nbytes / n) / PERIOD))
    return n * f, nbytes * f


def live(name):
    return est(SPEC[name][0], SPEC[name][1])


def alloc(name):
    return est(SPEC[name][2], SPEC[name][3])


def run(args, expect_rc=0):
    r = subprocess.run([TOOL] + args, capture_output=True, text=True)
    check(r.returncode == expect_rc,
          f'amalloc-prof {" ".join(args)}: exit {r.returncode}, expected {expect_rc}; '
          f'stderr: {r.stderr.strip()[-500:]}')
    check('Traceback' not in r.stderr, f'amalloc-prof {" ".join(args)}: a Python traceback')
    return r


def make_profile(tmp, synth=SYNTH, name='p.heap'):
    path = os.path.join(tmp, name)
    specs = [f'{k}:{v[0]}:{v[1]}:{v[2]}:{v[3]}' for k, v in SPEC.items()]
    subprocess.run([synth, path, str(PERIOD)] + specs, check=True)
    return path


def table_rows(out):
    """[(first value, percent, blocks, second value, site)] of a table printed with --bytes"""
    rows = []
    seen_header = False
    for line in out.splitlines():
        if re.match(r'^\s*(live|alloc) bytes\s', line):
            seen_header = True
            continue
        if not seen_header:
            continue
        m = re.match(r'^\s*(\d+)\s+([\d.]+)%\s+([\d.]+)%\s+([\d,]+)\s+(\d+)\s\s(.*)$', line)
        if check(m, f'table row not understood: {line!r}'):
            rows.append((int(m.group(1)), float(m.group(2)), int(m.group(4).replace(',', '')),
                         int(m.group(5)), m.group(6)))
    return rows


def marker_line(path, marker):
    with open(path) as f:
        for k, line in enumerate(f, 1):
            if marker in line:
                return k
    raise SystemExit(f'{marker} not in {path}')


# ---- cases ---------------------------------------------------------------------------------------

def case_table(tmp, synth=SYNTH):
    prof = make_profile(tmp, synth)
    # the scaling matters for the ranking (else this test could not tell it was applied)
    check(SPEC['b'][1] > SPEC['a'][1] and live('a')[1] > live('b')[1], 'SPEC discriminates')

    r = run(['--bytes', '-n', '100', prof])
    rows = table_rows(r.stdout)
    expected = sorted((k for k in SPEC if round(live(k)[1]) > 0), key=lambda k: -live(k)[1])
    check([row[4] for row in rows] == [SITE[k] for k in expected],
          f'live ranking {[row[4] for row in rows]} != {[SITE[k] for k in expected]}')
    by_site = {row[4]: row for row in rows}
    total_live = sum(live(k)[1] for k in SPEC)
    for k in expected:
        row = by_site.get(SITE[k])
        if not check(row, f'no row for {SITE[k]}'):
            continue
        check(abs(row[0] - live(k)[1]) <= 1, f'{SITE[k]} live bytes {row[0]} != {live(k)[1]:.1f}')
        check(abs(row[2] - live(k)[0]) <= 1, f'{SITE[k]} live blocks {row[2]} != {live(k)[0]:.1f}')
        check(abs(row[3] - alloc(k)[1]) <= 1,
              f'{SITE[k]} alloc bytes {row[3]} != {alloc(k)[1]:.1f}')
        check(abs(row[1] - 100 * live(k)[1] / total_live) < 0.06, f'{SITE[k]} percent {row[1]}')
    # one estimate spelled out: site_a's 20 samples of 64 bytes stand for ~8192.5 blocks each
    a_blocks = 20 / (1 - math.exp(-64 / PERIOD))
    check(abs(by_site.get('site_a', (0, 0, 0))[2] - a_blocks) <= 1,
          f'site_a blocks should be 20 / (1 - exp(-64/{PERIOD})) = {a_blocks:.1f}')
    check(SITE['wrap'] not in by_site, 'site_c (nothing live) is not in the live table')
    m = re.search(r'estimated live: (\d+) in ([\d,]+) blocks', r.stdout)
    check(m and abs(int(m.group(1)) - total_live) <= 1, f'live total line: {r.stdout[:300]}')
    check('heap_v2/524288' in r.stdout and '512 KiB' in r.stdout, 'sample period in the header')
    check(not re.search(r'\bmalloc\b', r.stdout), 'the malloc frame is dropped')
    check('libamalloc' not in r.stdout, 'libamalloc frames are dropped')

    # -n, the human units and the leak view
    r = run(['-n', '2', prof])
    rows = [l for l in r.stdout.splitlines() if re.search(r'%\s+[\d.]+%', l)]
    check(len(rows) == 2, f'-n 2 printed {len(rows)} rows')
    check('MiB' in r.stdout, 'human units by default')
    r = run(['--leaks', prof])
    check('still live at exit' in r.stdout.splitlines()[0], 'leak report title')
    check('site_a' in r.stdout, 'leak report lists site_a')

    # allocated ranking: site_c (freed, 100 samples of 4 KiB) first
    r = run(['--alloc', '--bytes', '-n', '100', prof])
    rows = table_rows(r.stdout)
    expected = sorted(SPEC, key=lambda k: -alloc(k)[1])
    check([row[4] for row in rows] == [SITE[k] for k in expected],
          f'alloc ranking {[row[4] for row in rows]} != {[SITE[k] for k in expected]}')
    if rows:
        check(abs(rows[0][0] - alloc('wrap')[1]) <= 1, 'site_c alloc bytes')

    # by line: the lines of the calls marked in the sources
    r = run(['--by', 'line', prof])
    a_line = marker_line(os.path.join(SRCDIR, 'synth.c'), '/* SITE_A */')
    lib_line = marker_line(os.path.join(SRCDIR, 'synth_lib.c'), '/* LIB_INNER */')
    check(re.search(rf'synth\.c:{a_line} \(site_a\)', r.stdout), f'synth.c:{a_line} (site_a)')
    check(re.search(rf'synth_lib\.c:{lib_line} \(lib_inner', r.stdout),
          f'synth_lib.c:{lib_line} (lib_inner)')
    cxx_line = marker_line(os.path.join(SRCDIR, 'synth_cxx.cc'), '/* CXX_SITE */')
    check(f'synth_cxx.cc:{cxx_line} ({SITE["cxx"]})' in r.stdout,
          f'synth_cxx.cc:{cxx_line} (the demangled C++ name)')

    # by object: the program holds a, b, cxx and deep; the library lib
    r = run(['--by', 'object', '--bytes', prof])
    by_obj = {row[4]: row for row in table_rows(r.stdout)}
    exe = os.path.basename(synth)
    prog = sum(live(k)[1] for k in ('a', 'b', 'deep', 'cxx'))
    check(exe in by_obj and abs(by_obj[exe][0] - prog) <= 1, f'object {exe}: {by_obj.get(exe)}')
    check('libsynth.so' in by_obj and abs(by_obj['libsynth.so'][0] - live('lib')[1]) <= 1,
          'object libsynth.so')

    # gperftools' unsampled format: the numbers are taken as they are
    with open(prof) as f:
        text = f.read()
    plain = os.path.join(tmp, 'plain.heap')
    with open(plain, 'w') as f:
        f.write(re.sub(r'heap_v2/\d+', 'heapprofile', text, count=1))
    r = run(['--bytes', plain])
    check(re.search(rf'^\s*{SPEC["b"][1]}\s.*site_b$', r.stdout, re.M), 'heapprofile: unscaled')


def case_table_nopie(tmp):
    case_table(tmp, SYNTH_NOPIE)
    with open(SYNTH_NOPIE, 'rb') as f:
        check(f.read(18)[16] == 2, 'synth-nopie is ET_EXEC (a non-PIE executable)')


def folded_lines(out):
    res = {}
    for line in out.splitlines():
        stack, _, value = line.rpartition(' ')
        check(stack and value.isdigit(), f'folded line {line!r}')
        res[stack] = res.get(stack, 0) + int(value)
    return res


def case_folded(tmp):
    prof = make_profile(tmp)
    r = run(['--folded', prof])
    lines = folded_lines(r.stdout)
    tails = {'a': 'main;build;site_a', 'b': 'main;build;mid_b;site_b',
             'lib': 'main;build;lib_site;lib_inner', 'deep': 'main;build' + ';deep' * 125,
             'cxx': 'main;build;cxx_site;' + SITE['cxx']}
    for k, tail in tails.items():
        got = [(s, v) for s, v in lines.items() if s.endswith(';' + tail)]
        if check(len(got) == 1, f'one folded stack ending in {tail[:60]}: {len(got)}'):
            s, v = got[0]
            check(abs(v - live(k)[1]) <= 1, f'{k}: folded bytes {v} != {live(k)[1]:.1f}')
            check(len(s.split(';')) == len(tail.split(';')) + 1,
                  f'{k}: one frame (the C library) below main: {s[:120]}')
    check(lines.get('[unknown]') is not None and abs(lines['[unknown]'] - live('none')[1]) <= 1,
          'the stack without addresses is [unknown]')
    wild = [s for s in lines if s.endswith(SITE['wild'])]
    if check(len(wild) == 1, 'the wild stack'):
        frames = wild[0].split(';')
        check(frames[-4:-1] == ['main', '0x48', frames[-2]] and frames[-2].startswith('[vdso]+0x'),
              f'wild: main, the unmapped address, [vdso]: {frames}')
    check('libamalloc' not in r.stdout, 'libamalloc frames are dropped')
    check(not any(s.endswith(';site_c') for s in lines), 'nothing live from site_c')
    check(abs(sum(lines.values()) - sum(live(k)[1] for k in SPEC)) <= len(lines),
          'folded bytes add up to the live total')
    for s in lines:
        check(';;' not in s and not s.startswith(';'), f'empty frame in {s[:80]}')

    r = run(['--folded', '--alloc', prof])
    lines = folded_lines(r.stdout)
    got = [v for s, v in lines.items() if s.endswith(';main;build;site_c')]
    check(len(got) == 1 and abs(got[0] - alloc('wrap')[1]) <= 1,
          f'--alloc: site_c with its allocated bytes, malloc dropped: {got}')


def svg_titles(path_or_text, is_text=False):
    root = ET.fromstring(path_or_text) if is_text else ET.parse(path_or_text).getroot()
    ns = '{http://www.w3.org/2000/svg}'
    check(root.tag == ns + 'svg', f'root element {root.tag}')
    frames = []
    for g in root.iter(ns + 'g'):
        t, rect = g.find(ns + 'title'), g.find(ns + 'rect')
        if t is not None and rect is not None:
            frames.append((t.text, float(rect.get('width')), float(rect.get('y'))))
    return root, frames


def case_svg(tmp):
    prof = make_profile(tmp)
    out = os.path.join(tmp, 'p.svg')
    run(['--svg', out, prof])
    root, frames = svg_titles(out)
    names = {t.split(' ')[0].rstrip(':') for t, _, _ in frames}
    for want in ('all', 'main', 'build', 'site_a', 'site_b', 'mid_b', 'lib_site', 'lib_inner',
                 'deep', '[unknown]', SITE['cxx']):
        check(want in names, f'svg has a frame {want}')
    check('libamalloc' not in ET.tostring(root, encoding='unicode'), 'no libamalloc frame')
    rootw = [w for t, w, _ in frames if t.startswith('all:')]
    total = sum(live(k)[1] for k in SPEC)
    a = [(t, w) for t, w, _ in frames if t.startswith('site_a ')]
    if check(len(rootw) == 1 and len(a) == 1, 'one root and one site_a frame'):
        check(abs(a[0][1] / rootw[0] - live('a')[1] / total) < 0.002,
              f'site_a width {a[0][1]} of {rootw[0]}: share {live("a")[1] / total:.3f}')
        check(f'{round(live("a")[1]):,} bytes' in a[0][0], f'site_a title has its bytes: {a[0][0]}')
    check(sum(1 for t, _, _ in frames if t.startswith('deep ')) == 125, 'all 125 deep frames')
    # one box per function under one caller, whatever lines of it the stacks pass through
    for fn in ('main', 'build'):
        check(sum(1 for t, _, _ in frames if t.startswith(fn + ' ')) == 1, f'one {fn} box')
    ys = [y for t, _, y in frames]
    check(max(ys) == next(y for t, _, y in frames if t.startswith('all:')), 'root at the bottom')
    check(int(root.get('width')) >= 1000, 'about 1200 wide')
    # the labels are cut to their frames: no text wider than its rectangle at 0.6 em per char
    ns = '{http://www.w3.org/2000/svg}'
    for g in root.iter(ns + 'g'):
        rect, text = g.find(ns + 'rect'), g.find(ns + 'text')
        if rect is not None and text is not None:
            check(len(text.text) * 7.2 <= float(rect.get('width')),
                  f'label {text.text!r} fits {rect.get("width")}')

    # to stdout, and escaping: an object whose name has XML's special characters
    with open(prof) as f:
        text = f.read()
    odd = os.path.join(tmp, 'odd.heap')
    with open(odd, 'w') as f:
        f.write(text.replace('/nonexistent/libgone.so.1', '/nonexistent/lib<gone&"x">.so'))
    r = run(['--svg', '-', odd])
    root, frames = svg_titles(r.stdout, is_text=True)
    check(any(t.startswith('lib<gone&"x">.so+0x') for t, _, _ in frames), 'escaped name kept')
    r = run(['--svg', os.path.join(tmp, 'a.svg'), '--alloc', '--leaks', prof])
    root, frames = svg_titles(os.path.join(tmp, 'a.svg'))
    check(any(t.startswith('site_c ') for t, _, _ in frames), '--alloc graph has site_c')


def case_stripped(tmp):
    """a stripped copy of libsynth.so: lib_site keeps its name (.dynsym), the static lib_inner
    becomes libsynth.so+0xOFFSET, and that offset lies inside lib_inner."""
    prof = make_profile(tmp)
    lib_dir = os.path.join(tmp, 'stripped')
    os.mkdir(lib_dir)
    copy = os.path.join(lib_dir, os.path.basename(LIBSYNTH))
    shutil.copy(LIBSYNTH, copy)
    subprocess.run(['strip', '--strip-all', copy], check=True)
    with open(prof) as f:
        text = f.read()
    real = os.path.realpath(LIBSYNTH)
    check(real in text, 'the profile maps libsynth.so')
    with open(prof, 'w') as f:
        f.write(text.replace(real, copy))
    r = run(['--folded', prof])
    m = re.search(r';lib_site;libsynth\.so\+0x([0-9a-f]+) \d+$', r.stdout, re.M)
    if check(m, f'stripped: lib_site then libsynth.so+0x...: {r.stdout}'):
        off = int(m.group(1), 16)
        nm = subprocess.run(['nm', '-S', LIBSYNTH], capture_output=True, text=True).stdout
        sym = re.search(r'^([0-9a-f]+) ([0-9a-f]+) t lib_inner$', nm, re.M)
        if check(sym, 'nm finds lib_inner in the unstripped library'):
            start, size = int(sym.group(1), 16), int(sym.group(2), 16)
            check(start <= off < start + size, f'0x{off:x} is inside lib_inner')
    # an object deleted while the program ran: another file may have its name now, so it is
    # not read (object+offset, and a warning)
    with open(prof, 'w') as f:
        f.write(text.replace(real, real + ' (deleted)'))
    r = run(['--folded', prof])
    check(re.search(r';libsynth\.so\+0x[0-9a-f]+;libsynth\.so\+0x[0-9a-f]+ \d+$', r.stdout, re.M)
          and 'deleted' in r.stderr, 'deleted library: object+offset frames and a warning')
    # a missing object file: object+offset, and no error
    with open(prof, 'w') as f:
        f.write(text.replace(real, '/nonexistent/dir/libsynth.so'))
    r = run(['--folded', prof])
    check(re.search(r';libsynth\.so\+0x[0-9a-f]+;libsynth\.so\+0x[0-9a-f]+ \d+$', r.stdout, re.M),
          'missing library: object+offset frames')


def case_errors(tmp):
    prof = make_profile(tmp)
    with open(prof) as f:
        text = f.read()

    def bad(name, content, words):
        path = os.path.join(tmp, name)
        with open(path, 'w') as f:
            f.write(content)
        r = run([path], expect_rc=1)
        check(r.stdout == '', f'{name}: nothing on stdout')
        for w in words:
            check(w in r.stderr, f'{name}: {w!r} in the message: {r.stderr.strip()}')

    bad('nomaps.heap', text[:text.index('\nMAPPED_LIBRARIES:')] + '\n', ['MAPPED_LIBRARIES'])
    bad('emptymaps.heap', text[:text.index('MAPPED_LIBRARIES:')] + 'MAPPED_LIBRARIES:\n',
        ['MAPPED_LIBRARIES'])
    bad('header.heap', 'heap profile: this is not\n' + text.split('\n', 1)[1],
        ['not a heap profile', ':1:'])
    bad('sampling.heap', re.sub(r'heap_v2/\d+', 'heap_v9/7', text, count=1), ['heap_v9/7'])
    lines = text.split('\n')
    bad('line3.heap', '\n'.join(lines[:2] + ['   1: 100 [ 1: 100 ] @ 0xZZ'] + lines[3:]),
        [':3:'])
    bad('empty.heap', '', ['empty'])
    r = run([os.path.join(tmp, 'does-not-exist.heap')], expect_rc=1)
    check('does-not-exist.heap' in r.stderr, 'missing file named')
    with open(os.path.join(tmp, 'bin.heap'), 'wb') as f:
        with open(SYNTH, 'rb') as s:
            f.write(s.read(4096))
    run([os.path.join(tmp, 'bin.heap')], expect_rc=1)


def case_cli(tmp):
    r = run(['--help'])
    check('usage: amalloc-prof' in r.stdout and '--folded' in r.stdout and '--svg' in r.stdout,
          '--help describes the options')
    for args in (['--bogus', 'x.heap'], [], ['-n', 'x', 'x.heap'], ['--by', 'file', 'x.heap'],
                 ['-n', '-1', 'x.heap']):
        r = run(args, expect_rc=2)
        check('usage:' in r.stderr, f'{args}: usage on stderr')


def case_many(tmp):
    """10,000 stacks of 1 to 128 frames over 5,000 distinct addresses in the program and the C
    library, some outside any mapping, some empty: the time of each view is printed."""
    prof = make_profile(tmp)
    with open(prof) as f:
        text = f.read()
    head, maps = text.split('\nMAPPED_LIBRARIES:\n')
    code = []
    for line in maps.splitlines():
        f = line.split()
        if len(f) >= 6 and 'x' in f[1] and ('libc.so' in f[5] or f[5] == os.path.realpath(SYNTH)):
            lo, hi = (int(x, 16) for x in f[0].split('-'))
            code.append((lo, hi))
    check(len(code) == 2, f'executable mappings of synth and libc: {code}')
    rnd = random.Random(15)
    pool = []
    for _ in range(5000):
        lo, hi = rnd.choice(code)
        pool.append(rnd.randrange(lo + 1, hi))
    pool += [0x48, 0xdead0000]           # in no mapping
    out = [f'heap profile: 0: 0 [0: 0] @ heap_v2/{PERIOD}']
    total = 0.0
    for i in range(10000):
        depth = 128 if i % 10 == 0 else rnd.randint(0 if i % 500 == 0 else 1, 40)
        addrs = [rnd.choice(pool) for _ in range(depth)]
        n = rnd.randint(0, 5)
        b = n * rnd.choice((16, 64, 1000, 100000, 3 << 20))
        total += est(n, b)[1]
        out.append(f'{n}: {b} [{n + 1}: {b + 64}] @ ' + ' '.join(f'0x{a:x}' for a in addrs))
    big = os.path.join(tmp, 'many.heap')
    with open(big, 'w') as f:
        f.write('\n'.join(out) + '\n\nMAPPED_LIBRARIES:\n' + maps)
    for args in (['--bytes'], ['--folded'], ['--svg', os.path.join(tmp, 'many.svg')]):
        t0 = time.monotonic()
        r = run(args + [big])
        print(f'amalloc-prof {" ".join(args[:1])} on 10,000 stacks: '
              f'{time.monotonic() - t0:.2f} s')
        if args == ['--bytes']:
            m = re.search(r'estimated live: (\d+) in', r.stdout)
            check(m and abs(int(m.group(1)) - total) <= 1, 'many: the live total')
        elif args == ['--folded']:
            lines = folded_lines(r.stdout)
            check(abs(sum(lines.values()) - total) <= len(lines), 'many: folded total')
            check(any(s.count(';') >= 127 for s in lines), 'many: 128-frame stacks kept whole')
    svg_titles(os.path.join(tmp, 'many.svg'))


CASES = {'table': case_table, 'table-nopie': case_table_nopie, 'folded': case_folded,
         'svg': case_svg, 'stripped': case_stripped, 'errors': case_errors, 'cli': case_cli,
         'many': case_many}

if __name__ == '__main__':
    with tempfile.TemporaryDirectory(prefix='amalloc-prof-test.') as tmp:
        CASES[CASE](tmp)
    if failures:
        print(f'{len(failures)} check(s) failed', file=sys.stderr)
        sys.exit(1)
    print('ok')
