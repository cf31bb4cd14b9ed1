#!/usr/bin/python3
"""amalloc-prof -- read a heap profile written by amalloc (AMALLOC_PROF=1, am_prof_dump()).

    amalloc-prof [options] PROFILE.heap

Prints the allocation sites that hold the most memory (a top-N table), the profile as folded
stacks (the input of flame-graph tools), or writes an SVG flame graph. doc/amalloc-prof.md
explains how to read them.

The profile is gperftools' heap-profile text format (the one google-pprof reads): a totals line
`heap profile: ... @ heap_v2/<period>`, one line per stack `live_n: live_bytes [alloc_n:
alloc_bytes] @ addr addr ...` (return addresses, innermost first, raw sampled numbers), then
`MAPPED_LIBRARIES:` and the process's /proc/self/maps. The numbers are scaled back to estimates
of the whole program line by line, as pprof does (estimate()), and the addresses are turned into
function names with binutils' addr2line, one process per object file (symbolise()).

Only the Python standard library and binutils (addr2line, nm) are used: everything is in Debian.
"""

import argparse
import bisect
import colorsys
import math
import os
import re
import struct
import subprocess
import sys
import zlib

PROG = 'amalloc-prof'


class ProfileError(Exception):
    """The input is not a profile this tool can read: reported as one line, exit status 1."""


def warn(msg):
    print(f'{PROG}: warning: {msg}', file=sys.stderr)


# ---- reading the profile ------------------------------------------------------------------------

HEADER_RE = re.compile(
    r'^\s*heap profile:\s*(\d+):\s*(\d+)\s*\[\s*(\d+):\s*(\d+)\s*\]\s*@\s*(\S+)\s*$')
STACK_RE = re.compile(r'^\s*(\d+):\s*(\d+)\s*\[\s*(\d+):\s*(\d+)\s*\]\s*(?:@(.*))?$')
MAPS_RE = re.compile(
    r'^([0-9a-fA-F]+)-([0-9a-fA-F]+)\s+(\S+)\s+([0-9a-fA-F]+)\s+\S+\s+\d+\s*(.*?)\s*$')


class Stack:
    """One stack line of the profile, with its numbers scaled to estimates of the whole program."""
    __slots__ = ('addrs', 'live_bytes', 'live_blocks', 'alloc_bytes', 'alloc_blocks', 'frames')

    def __init__(self, addrs, live, alloc):
        self.addrs = addrs
        self.live_blocks, self.live_bytes = live
        self.alloc_blocks, self.alloc_bytes = alloc
        self.frames = None      # filled by symbolise(): innermost first


class Mapping:
    __slots__ = ('start', 'end', 'offset', 'path', 'perms')

    def __init__(self, start, end, offset, path, perms):
        self.start, self.end, self.offset, self.path, self.perms = start, end, offset, path, perms


class Profile:
    def __init__(self, period, kind, stacks, mappings):
        self.period = period        # mean sampling period in bytes; 0: every block is in it
        self.kind = kind            # the header's sampling word, e.g. heap_v2/524288
        self.stacks = stacks
        self.mappings = mappings    # in the order of the maps (address order)


def estimate(count, nbytes, period):
    """(blocks, bytes) of the program that `count` sampled blocks of `nbytes` in all stand for.

    heap_v2 samples a block of s bytes with probability 1 - exp(-s/R) (one sample per R bytes on
    average, exponential gaps), so each sampled block of the line's mean size stands for
    1 / (1 - exp(-mean/R)) blocks: pprof's rule, applied per line and separately to the live
    and the allocated numbers, because their mean sizes differ. Blocks much larger than R are
    always sampled (factor 1); a 64-byte block at R = 512 KiB stands for about 8192 blocks.
    """
    if count == 0 or nbytes == 0 or period <= 0:
        return float(count), float(nbytes)
    # -expm1(-x) is 1 - exp(-x) without the cancellation that small blocks (x ~ 1e-4) suffer
    factor = 1.0 / -math.expm1(-(nbytes / count) / period)
    return count * factor, nbytes * factor


def read_profile(path):
    try:
        with open(path, 'r', encoding='utf-8', errors='replace') as f:
            lines = f.read().split('\n')
    except OSError as e:
        raise ProfileError(f'{path}: {e.strerror}')
    if not lines or not lines[0].strip():
        raise ProfileError(f'{path}: empty file, not a heap profile')
    if '\0' in lines[0]:
        raise ProfileError(f'{path}: a binary file, not a heap profile')
    m = HEADER_RE.match(lines[0])
    if not m:
        raise ProfileError(f'{path}:1: not a heap profile: expected '
                           f"'heap profile: N: BYTES [ N: BYTES] @ heap_v2/PERIOD', "
                           f'found {lines[0][:80]!r}')
    kind = m.group(5)
    if kind.startswith('heap_v2/'):
        try:
            period = int(kind[len('heap_v2/'):])
        except ValueError:
            raise ProfileError(f'{path}:1: bad sampling period in {kind!r}')
    elif kind == 'heapprofile':
        period = 0          # gperftools' unsampled HEAPPROFILE: the numbers are exact
    else:
        raise ProfileError(f"{path}:1: unsupported sampling {kind!r} (expected 'heap_v2/PERIOD')")

    stacks = []
    i = 1
    n = len(lines)
    while i < n:
        line = lines[i]
        if not line.strip() or line.startswith('MAPPED_LIBRARIES:'):
            break
        m = STACK_RE.match(line)
        if not m:
            raise ProfileError(f'{path}:{i + 1}: not a stack line: {line[:80]!r}')
        try:
            addrs = tuple(int(a, 16) for a in (m.group(5) or '').split())
        except ValueError:
            raise ProfileError(f'{path}:{i + 1}: bad address in {line[:80]!r}')
        ln, lb, an, ab = (int(m.group(k)) for k in range(1, 5))
        stacks.append(Stack(addrs, estimate(ln, lb, period), estimate(an, ab, period)))
        i += 1

    while i < n and not lines[i].strip():
        i += 1
    if i >= n or not lines[i].startswith('MAPPED_LIBRARIES:'):
        where = f'line {i + 1}' if i < n else 'the end of the file'
        raise ProfileError(f'{path}: no MAPPED_LIBRARIES: section (at {where}): the addresses '
                           f'cannot be symbolised without the process\'s memory map')
    mappings = []
    for line in lines[i + 1:]:
        m = MAPS_RE.match(line)
        if not m:
            continue        # blank or odd lines: the map is the kernel's, not ours to judge
        start, end, perms, off, p = m.groups()
        mappings.append(Mapping(int(start, 16), int(end, 16), int(off, 16), p, perms))
    if not mappings:
        raise ProfileError(f'{path}: the MAPPED_LIBRARIES: section holds no mapping')
    return Profile(period, kind, stacks, mappings)


# ---- ELF: which addresses addr2line wants --------------------------------------------------------

class Elf:
    """What symbolisation needs from an ELF file: its type and its loadable segments."""

    def __init__(self, etype, loads):
        self.etype = etype      # 2: ET_EXEC (absolute addresses), 3: ET_DYN (PIE, .so)
        self.loads = loads      # [(p_offset, p_vaddr, p_filesz)] of the PT_LOAD segments

    def vaddr(self, off):
        """The link-time address of file offset `off`, the address addr2line expects. For the
        usual binutils layouts it equals the offset, but lld and -z separate-code layouts can
        load a segment at a vaddr that is not its file offset."""
        for p_off, p_vaddr, p_filesz in self.loads:
            if p_off <= off < p_off + p_filesz:
                return off - p_off + p_vaddr
        return off


def read_elf(path):
    """Elf of `path`, or None if it cannot be read or is not ELF."""
    try:
        with open(path, 'rb') as f:
            hdr = f.read(64)
            if len(hdr) < 52 or hdr[:4] != b'\x7fELF' or hdr[4] not in (1, 2) \
                    or hdr[5] not in (1, 2):
                return None
            bits64 = hdr[4] == 2
            e = '<' if hdr[5] == 1 else '>'
            etype = struct.unpack_from(e + 'H', hdr, 16)[0]
            if bits64:
                if len(hdr) < 64:
                    return None
                phoff = struct.unpack_from(e + 'Q', hdr, 32)[0]
                phentsize, phnum = struct.unpack_from(e + 'HH', hdr, 54)
                fmt, need = e + 'IIQQQQQQ', 56
            else:
                phoff = struct.unpack_from(e + 'I', hdr, 28)[0]
                phentsize, phnum = struct.unpack_from(e + 'HH', hdr, 42)
                fmt, need = e + 'IIIIIIII', 32
            loads = []
            if phoff and phentsize >= need and 0 < phnum < 0xffff:
                f.seek(phoff)
                table = f.read(phentsize * phnum)
                for k in range(len(table) // phentsize):
                    v = struct.unpack_from(fmt, table, k * phentsize)
                    if v[0] != 1:           # PT_LOAD
                        continue
                    if bits64:              # type flags offset vaddr paddr filesz memsz align
                        loads.append((v[2], v[3], v[5]))
                    else:                   # type offset vaddr paddr filesz memsz flags align
                        loads.append((v[1], v[2], v[4]))
            return Elf(etype, loads)
    except (OSError, struct.error):
        return None


# ---- symbolisation -------------------------------------------------------------------------------

# Frame: (function name, source "file:line" or None, object display name). Interned in one dict
# so that stacks share their tuples.
UNKNOWN_OBJ = '?'

# The allocation entry points of the C library, the C++ runtime and amalloc: a profile's first
# frame is normally the caller of malloc already, but a caller inside one of these (libstdc++'s
# operator new calling malloc, aligned_alloc calling memalign, a statically linked amalloc) is
# not the allocation site a reader looks for. Matched after removing glibc's __GI_/__libc_
# prefixes.
WRAPPERS = frozenset('''malloc calloc realloc reallocarray free cfree memalign aligned_alloc
    posix_memalign valloc pvalloc mid_memalign int_malloc int_memalign malloc_hook_ini
    am_malloc am_calloc am_realloc am_reallocarray am_aligned_alloc am_posix_memalign
    am_memalign am_valloc am_pvalloc'''.split())
WRAPPER_PREFIX_RE = re.compile(r'^(?:__GI_)?_*(?:libc_)?')
OPERATOR_NEW_RE = re.compile(r'^operator new(?:\[\])?\(')


def is_wrapper(frame):
    name = frame[0]
    if name.startswith('_am_'):
        return True         # amalloc's internal cross-file functions (a static libamalloc.a)
    if OPERATOR_NEW_RE.match(name):
        return True
    return WRAPPER_PREFIX_RE.sub('', name, count=1) in WRAPPERS


def is_libamalloc(path):
    return os.path.basename(path).startswith('libamalloc')


def tool_env():
    # addr2line may be built with debuginfod: never let a profile viewer reach the network
    env = dict(os.environ)
    env['DEBUGINFOD_URLS'] = ''
    env['LC_ALL'] = 'C'
    return env


_missing_tools = set()


def run_tool(argv, stdin_text):
    """stdout of argv (or None if it could not run), fed stdin_text."""
    try:
        r = subprocess.run(argv, input=stdin_text, capture_output=True, text=True,
                           errors='replace', env=tool_env())
    except FileNotFoundError:
        if argv[0] not in _missing_tools:
            _missing_tools.add(argv[0])
            warn(f'{argv[0]} not found (Debian package binutils): addresses stay unresolved')
        return None
    except OSError as e:
        warn(f'{argv[0]}: {e.strerror}')
        return None
    return r.stdout


ADDR_LINE_RE = re.compile(r'^0x[0-9a-fA-F]+$')


def addr2line(path, addrs):
    """{addr: [(function, file:line or None), ...innermost inline first]} for the addresses of
    one object, in one addr2line process. -a prints each address before its frames, which is
    how the output of -i (a variable number of frames per address) is split again."""
    out = run_tool(['addr2line', '-a', '-f', '-C', '-i', '-e', path],
                   ''.join(f'0x{a:x}\n' for a in addrs))
    result = {}
    if not out:
        return result
    lines = out.split('\n')
    i, n = 0, len(lines)
    while i < n:
        if not ADDR_LINE_RE.match(lines[i]):
            i += 1
            continue
        addr = int(lines[i], 16)
        i += 1
        frames = []
        while i + 1 < n and not ADDR_LINE_RE.match(lines[i]):
            func, loc = lines[i], lines[i + 1]
            i += 2
            if func == '??' or not func:
                continue
            if func.startswith('__GI_'):
                func = func[5:]     # glibc's internal alias of a public function: its name
            loc = loc.split(' (discriminator')[0]
            fname, _, line = loc.rpartition(':')
            if fname in ('??', '') or line in ('0', '?', ''):
                loc = None
            else:
                loc = f'{os.path.normpath(fname)}:{line}'
            frames.append((func, loc))
        result[addr] = frames
    return result


def symbol_ranges(path):
    """{name: [(start, end)]} of the sized function symbols of an object (.symtab, else .dynsym),
    named as addr2line -C names them."""
    for dynamic in ([], ['-D']):
        out = run_tool(['nm', '-S', '-C', '--defined-only'] + dynamic + [path], '')
        ranges = {}
        for line in (out or '').split('\n'):
            parts = line.split(None, 3)    # value size type name (unsized symbols have 3 fields)
            if len(parts) != 4 or len(parts[2]) != 1 or parts[2] not in 'TtWwi':
                continue
            try:
                start, size = int(parts[0], 16), int(parts[1], 16)
            except ValueError:
                continue
            if size:
                ranges.setdefault(parts[3].split('@')[0], []).append((start, start + size))
        if ranges:
            return ranges
    return {}


def checked_by_size(path, named, rels):
    """Without debug information addr2line names an address after the nearest symbol before
    it, however far: in a stripped program, a static function takes the name of the exported
    one before it (python3's static functions come out as PyThread_init_thread & co.). Names
    that come from the symbol table alone (no source line) are kept only if the symbol's size
    covers the address; the others are dropped, and the frame becomes object+offset."""
    suspect = [r for r in rels if named.get(r) and len(named[r]) == 1 and named[r][0][1] is None]
    if not suspect:
        return
    ranges = symbol_ranges(path)
    for r in suspect:
        spans = ranges.get(named[r][0][0])
        if spans and not any(lo <= r < hi for lo, hi in spans):
            del named[r]


class Symboliser:
    def __init__(self, profile):
        self.maps = sorted(profile.mappings, key=lambda m: m.start)
        self.starts = [m.start for m in self.maps]
        # the program: the first file mapping of the maps (the kernel lists by address, and the
        # executable is mapped below the libraries, PIE or not)
        self.program = next((os.path.basename(m.path.removesuffix(' (deleted)'))
                             for m in profile.mappings if m.path.startswith('/')), None)
        self.elves = {}
        self.warned = set()

    def mapping(self, addr):
        k = bisect.bisect_right(self.starts, addr) - 1
        if k >= 0 and addr < self.maps[k].end:
            return self.maps[k]
        return None

    def elf(self, path):
        if path not in self.elves:
            self.elves[path] = read_elf(path) if os.path.isfile(path) else None
        return self.elves[path]

    def resolve(self, addrs):
        """{return address: tuple of frames (innermost first), or None for a libamalloc frame}"""
        frames_of = {}
        per_object = {}         # path -> {relative address: [return addresses]}
        fallback = {}           # return address -> frame if addr2line cannot name it
        for addr in addrs:
            # a return address is the instruction after the call; the call is the byte before
            pc = addr - 1 if addr > 0 else addr
            m = self.mapping(pc)
            if m is None:
                frames_of[addr] = ((f'0x{addr:x}', None, '[unmapped]'),)
                continue
            path = m.path
            if path.startswith('/'):
                deleted = path.endswith(' (deleted)')
                path = path.removesuffix(' (deleted)')
                if is_libamalloc(path):
                    frames_of[addr] = None
                    continue
                obj = os.path.basename(path)
                off = pc - m.start + m.offset
                # a file deleted while the program ran (an upgrade, a rebuild): whatever has its
                # name now is another file, whose names would be wrong
                elf = None if deleted else self.elf(path)
                if deleted and path not in self.warned:
                    self.warned.add(path)
                    warn(f'{path} was deleted while the program ran: its frames stay '
                         f'{obj}+offset')
                if elf is None:
                    frames_of[addr] = ((f'{obj}+0x{off:x}', None, obj),)
                    continue
                rel = pc if elf.etype == 2 else elf.vaddr(off)
                fallback[addr] = (f'{obj}+0x{rel:x}', None, obj)
                per_object.setdefault(path, {}).setdefault(rel, []).append(addr)
            else:
                obj = path or '[anon]'
                frames_of[addr] = ((f'{obj}+0x{pc - m.start:x}', None, obj),)

        for path, rels in per_object.items():
            obj = os.path.basename(path)
            # addr2line names what it can from the debug information (separate debug files
            # included), else from .symtab, else from .dynsym: a stripped library still names
            # its exported functions; the rest become object+offset (checked_by_size)
            named = addr2line(path, rels.keys())
            checked_by_size(path, named, rels)
            for rel, raddrs in rels.items():
                fr = named.get(rel)
                if fr:
                    value = tuple((func, loc, obj) for func, loc in fr)
                else:
                    value = (fallback[raddrs[0]],)
                for a in raddrs:
                    frames_of[a] = value
        return frames_of


def symbolise(profile):
    addrs = set()
    for s in profile.stacks:
        addrs.update(s.addrs)
    sym = Symboliser(profile)
    frames_of = sym.resolve(addrs)
    intern = {}
    unknown = (('[unknown]', None, UNKNOWN_OBJ),)
    for s in profile.stacks:
        frames = []
        for a in s.addrs:
            f = frames_of[a]
            if f is not None:
                frames.extend(f)
        # the site is the innermost frame outside the allocation functions; a stack made only
        # of them keeps its outermost one, which still says more than [unknown]
        k = 0
        while k < len(frames) - 1 and is_wrapper(frames[k]):
            k += 1
        frames = frames[k:] if frames else unknown
        s.frames = tuple(intern.setdefault(f, f) for f in frames)
    return sym.program


# ---- the table -----------------------------------------------------------------------------------

def fmt_bytes(n, exact):
    if exact:
        return f'{round(n)}'
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(n) < 1024 or unit == 'TiB':
            return f'{round(n)} B' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1024.0


def fmt_period(period):
    if period % 1048576 == 0:
        return f'{period // 1048576} MiB'
    if period % 1024 == 0:
        return f'{period // 1024} KiB'
    return f'{period} bytes'


def fmt_count(n):
    return f'{round(n):,}'


def site_key(frame, by, program):
    name, loc, obj = frame
    if by == 'object':
        return '[unknown]' if obj == UNKNOWN_OBJ else obj
    shown = name
    if obj not in (program, UNKNOWN_OBJ, '[unmapped]') and not name.startswith(obj):
        shown = f'{name} [{obj}]'
    if by == 'line' and loc:
        return f'{loc} ({shown})'
    return shown


def print_table(profile, program, args, out):
    total = {'live_bytes': 0.0, 'live_blocks': 0.0, 'alloc_bytes': 0.0, 'alloc_blocks': 0.0}
    sites = {}
    for s in profile.stacks:
        key = site_key(s.frames[0], args.by, program)
        row = sites.get(key)
        if row is None:
            row = sites[key] = [0.0, 0.0, 0.0, 0.0]
        row[0] += s.live_bytes
        row[1] += s.live_blocks
        row[2] += s.alloc_bytes
        row[3] += s.alloc_blocks
        total['live_bytes'] += s.live_bytes
        total['live_blocks'] += s.live_blocks
        total['alloc_bytes'] += s.alloc_bytes
        total['alloc_blocks'] += s.alloc_blocks

    exact = args.bytes
    b = lambda n: fmt_bytes(n, exact)
    period = (f'sample period {fmt_period(profile.period)} ({profile.kind})'
              if profile.period > 0 else f'every allocation recorded ({profile.kind})')
    nstacks = f'{len(profile.stacks):,} stack{"s" if len(profile.stacks) != 1 else ""}'
    live = f'{b(total["live_bytes"])} in {fmt_count(total["live_blocks"])} blocks'
    allocd = f'{b(total["alloc_bytes"])} in {fmt_count(total["alloc_blocks"])} blocks'
    if args.leaks:
        print(f'Leak report {args.profile}: memory still live at exit; {period}, {nstacks}',
              file=out)
        print(f'still live: {live} (estimated); allocated in all: {allocd}', file=out)
    else:
        print(f'Heap profile {args.profile}: {period}, {nstacks}', file=out)
        print(f'estimated live: {live}; allocated since start: {allocd}', file=out)

    if args.alloc:
        rank, ranked_total = 2, total['alloc_bytes']
        cols = ('alloc bytes', '%', 'cum%', 'alloc blocks', 'live bytes')
        cells = lambda r: (b(r[2]), r[3], b(r[0]))
    else:
        rank, ranked_total = 0, total['live_bytes']
        cols = ('live bytes', '%', 'cum%', 'live blocks', 'alloc bytes')
        cells = lambda r: (b(r[0]), r[1], b(r[2]))
    # sites with nothing of the ranked measure (all freed, for the live view) are not listed
    rows = sorted(((k, r) for k, r in sites.items() if round(r[rank]) > 0),
                  key=lambda kr: (-kr[1][rank], kr[0]))
    what = {'function': 'function', 'line': 'source line', 'object': 'object'}[args.by]
    shown = rows[:args.n]
    print(f'{len(shown)} of {len(rows)} sites by {what}, ranked by '
          f'{"allocated" if args.alloc else "live"} bytes', file=out)
    print(f'{cols[0]:>12} {cols[1]:>6} {cols[2]:>6} {cols[3]:>12} {cols[4]:>12}  site', file=out)
    cum = 0.0
    for key, r in shown:
        share = 100.0 * r[rank] / ranked_total if ranked_total else 0.0
        cum += share
        v0, blocks, v4 = cells(r)
        print(f'{v0:>12} {share:5.1f}% {cum:5.1f}% {fmt_count(blocks):>12} {v4:>12}  {key}',
              file=out)


# ---- folded stacks -------------------------------------------------------------------------------

def frame_label(frame):
    # ';' separates frames and the last space the count: keep both out of names
    return frame[0].replace(';', ':').replace('\n', ' ')


def folded(profile, use_alloc):
    sums = {}
    for s in profile.stacks:
        v = s.alloc_bytes if use_alloc else s.live_bytes
        if v <= 0:
            continue
        key = ';'.join(frame_label(f) for f in reversed(s.frames))
        sums[key] = sums.get(key, 0.0) + v
    return sorted((k, round(v)) for k, v in sums.items() if round(v) > 0)


# ---- SVG flame graph -----------------------------------------------------------------------------

SVG_WIDTH = 1200
FRAME_H = 16
FONT_SIZE = 12
CHAR_W = FONT_SIZE * 0.6        # monospace advance, so labels are cut where they really end
MIN_W = 0.5                     # narrower frames are not drawn (nor their children): they
                                # cannot be seen or hovered, and random-looking profiles would
                                # otherwise give SVGs of tens of megabytes
PAD_X = 10
XML_BAD_RE = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')

# hues of the libraries, in the order of their share of the bytes; the program is in the warm
# "hot" colours of CPU flame graphs, so its frames stand out from the libraries' cool ones
LIB_HUES = (0.58, 0.33, 0.78, 0.48, 0.68, 0.25, 0.53, 0.40, 0.85)


def xml_text(s):
    s = XML_BAD_RE.sub('?', s)
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace('"', '&quot;')


class Node:
    __slots__ = ('frame', 'value', 'children')

    def __init__(self, frame):
        self.frame, self.value, self.children = frame, 0.0, {}


def colour(frame, program, lib_hue):
    name, _, obj = frame
    h = zlib.crc32(name.encode('utf-8', 'replace'))
    v1, v2, v3 = (h & 0xff) / 255.0, ((h >> 8) & 0xff) / 255.0, ((h >> 16) & 0xff) / 255.0
    if obj == program:
        r, g, b = 205 + int(50 * v3), int(230 * v1), int(55 * v2)
    elif obj in lib_hue:
        r, g, b = (int(255 * c) for c in
                   colorsys.hls_to_rgb(lib_hue[obj], 0.58 + 0.16 * v1, 0.45 + 0.25 * v2))
    else:
        grey = 170 + int(40 * v1)
        r, g, b = grey, grey, grey
    return f'rgb({r},{g},{b})'


def write_svg(profile, program, args, out):
    use_alloc = args.alloc
    root = Node(('all', None, ''))
    obj_bytes = {}
    for s in profile.stacks:
        v = s.alloc_bytes if use_alloc else s.live_bytes
        if v <= 0:
            continue
        root.value += v
        node = root
        for f in reversed(s.frames):
            # one box per function and its callers, whichever line of it the stacks are at
            key = (f[0], None, f[2])
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = Node(key)
            child.value += v
            node = child
        for obj in {f[2] for f in s.frames}:
            obj_bytes[obj] = obj_bytes.get(obj, 0.0) + v

    objects = sorted(obj_bytes, key=lambda o: -obj_bytes[o])
    libs = [o for o in objects if o not in (program, UNKNOWN_OBJ, '[unmapped]')
            and not o.startswith('[')]
    lib_hue = {o: LIB_HUES[k % len(LIB_HUES)] for k, o in enumerate(libs)}

    # lay out: (depth, x, width, node), children in name order as flame graphs do (the x order
    # means nothing; sorting makes two graphs of one program comparable)
    total = root.value
    scale = (SVG_WIDTH - 2 * PAD_X) / total if total > 0 else 0.0
    boxes = []
    todo = [(0, float(PAD_X), root)]
    max_depth = 0
    while todo:
        depth, x, node = todo.pop()
        w = node.value * scale
        if w < MIN_W and node is not root:
            continue
        boxes.append((depth, x, w, node))
        max_depth = max(max_depth, depth)
        cx = x
        for key in sorted(node.children, key=lambda f: (f[0], f[2])):
            child = node.children[key]
            todo.append((depth + 1, cx, child))
            cx += child.value * scale

    if args.leaks:
        title = 'Leak report: memory still live at exit'
    elif use_alloc:
        title = 'Heap profile: allocated bytes (cumulative)'
    else:
        title = 'Heap profile: estimated live bytes'
    measure = 'allocated' if use_alloc else 'live'
    period = (f'sample period {fmt_period(profile.period)}' if profile.period > 0
              else 'every allocation recorded')
    subtitle = (f'{os.path.basename(args.profile)}: {fmt_bytes(total, False)} {measure} '
                f'(estimated), {period}. Width = bytes; the root is at the bottom, each frame '
                f'sits on its caller. Hover a frame for its numbers.')

    legend_y = 62
    top = legend_y + 22
    height = top + (max_depth + 1) * FRAME_H + 24
    base = height - 24          # the bottom edge of the root frame

    w = out.write
    w('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n')
    w(f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{SVG_WIDTH}" '
      f'height="{height}" viewBox="0 0 {SVG_WIDTH} {height}">\n')
    w('<style type="text/css">\n'
      'text { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; '
      f'font-size: {FONT_SIZE}px; fill: #000; }}\n'
      '.title { font-family: Verdana, sans-serif; font-size: 17px; }\n'
      '.sub { font-family: Verdana, sans-serif; font-size: 12px; fill: #444; }\n'
      'g.f:hover rect { stroke: #000; stroke-width: 0.8; }\n'
      '</style>\n')
    w(f'<rect x="0" y="0" width="{SVG_WIDTH}" height="{height}" fill="#f8f8f2"/>\n')
    w(f'<text class="title" x="{SVG_WIDTH / 2:.0f}" y="24" text-anchor="middle">'
      f'{xml_text(title)}</text>\n')
    w(f'<text class="sub" x="{SVG_WIDTH / 2:.0f}" y="44" text-anchor="middle">'
      f'{xml_text(subtitle)}</text>\n')

    # legend: which colour is which object (the program first)
    lx = PAD_X
    legend = ([program] if program in obj_bytes else []) + libs[:len(LIB_HUES)]
    for obj in legend:
        fill = colour(('', None, obj), program, lib_hue) if obj != program else 'rgb(230,110,25)'
        label = obj + (' (program)' if obj == program else '')
        if lx + 16 + len(label) * CHAR_W > SVG_WIDTH - PAD_X:
            break
        w(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" fill="{fill}"/>'
          f'<text x="{lx + 16}" y="{legend_y}">{xml_text(label)}</text>\n')
        lx += 16 + len(label) * CHAR_W + 18

    for depth, x, bw, node in boxes:
        frame = node.frame
        y = base - (depth + 1) * FRAME_H
        pct = 100.0 * node.value / total if total > 0 else 0.0
        if node is root:
            tip = f'all: {fmt_bytes(node.value, False)} {measure}, 100%'
            fill = 'rgb(200,200,200)'
        else:
            name, loc, obj = frame
            where = f' ({obj})' if obj else ''
            tip = (f'{name}{where}: {fmt_bytes(node.value, False)} {measure} '
                   f'({round(node.value):,} bytes), {pct:.2f}%')
            fill = colour(frame, program, lib_hue)
        w(f'<g class="f"><title>{xml_text(tip)}</title>'
          f'<rect x="{x:.1f}" y="{y}" width="{bw:.1f}" height="{FRAME_H - 1}" fill="{fill}" '
          f'/>')
        fit = int((bw - 6) / CHAR_W)
        if fit >= 3:
            label = frame[0]
            if len(label) > fit:
                label = label[:fit - 2] + '..'
            w(f'<text x="{x + 3:.1f}" y="{y + FRAME_H - 4}">{xml_text(label)}</text>')
        w('</g>\n')
    if not boxes or total <= 0:
        w(f'<text class="sub" x="{SVG_WIDTH / 2:.0f}" y="{base - 4}" text-anchor="middle">'
          f'no {measure} bytes in this profile</text>\n')
    w('</svg>\n')


# ---- main ----------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        description='Read a heap profile written by amalloc (AMALLOC_PROF=1): the top '
                    'allocation sites, folded stacks, or an SVG flame graph. The numbers are '
                    'estimates for the whole program, scaled from the sampled blocks.',
        epilog='Addresses are symbolised with addr2line (binutils); the object files must '
               'be where the profile\'s MAPPED_LIBRARIES section says. See doc/amalloc-prof.md.')
    p.add_argument('profile', metavar='PROFILE.heap', help='the heap profile to read')
    p.add_argument('-n', type=int, default=20, metavar='N',
                   help='rows of the table (default 20)')
    p.add_argument('--alloc', action='store_true',
                   help='rank and draw by bytes allocated since the start (cumulative) '
                        'instead of live bytes')
    p.add_argument('--by', choices=('function', 'line', 'object'), default='function',
                   help='group the table by the allocating function (default), by its source '
                        'file:line, or by shared object')
    p.add_argument('--leaks', action='store_true',
                   help='the table (and graph) as a leak report: the memory still live at exit')
    p.add_argument('--bytes', action='store_true',
                   help='exact byte counts in the table instead of KiB/MiB/GiB')
    p.add_argument('--folded', action='store_true',
                   help='print folded stacks "outer;...;inner BYTES" instead of the table')
    p.add_argument('--svg', metavar='FILE',
                   help='write an SVG flame graph to FILE ("-": standard output, and no table)')
    args = p.parse_args(argv)
    if args.n < 0:
        p.error('-n must be 0 or more')
    return args


def main(argv):
    args = parse_args(argv)
    try:
        profile = read_profile(args.profile)
        program = symbolise(profile)
        if args.svg:
            if args.svg == '-':
                write_svg(profile, program, args, sys.stdout)
                return 0
            try:
                with open(args.svg, 'w', encoding='utf-8') as f:
                    write_svg(profile, program, args, f)
            except OSError as e:
                raise ProfileError(f'{args.svg}: {e.strerror}')
        if args.folded:
            sys.stdout.write(''.join(f'{k} {v}\n' for k, v in folded(profile, args.alloc)))
        else:
            print_table(profile, program, args, sys.stdout)
    except ProfileError as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `amalloc-prof --folded x | head`: not an error; keep Python from complaining at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
