#!/usr/bin/env python3
"""docs-links.py -- every relative link and image in the user documentation resolves.

    docs-links.py SOURCE_ROOT          check README.md and doc/**/*.md under SOURCE_ROOT
    docs-links.py --self-test          check the checker on a made-up tree with known faults

For each Markdown file: every inline link or image `[text](target)` / `![alt](target)`, every
reference definition `[label]: target`, and every HTML `href="..."` / `src="..."`, outside fenced
code blocks and code spans, whose target has no URL scheme (http:, https:, mailto:, ...) must
name a file or directory of the repository: tracked by git when SOURCE_ROOT is a git work tree
(so a page that exists only in someone's checkout, or a build output, does not count), present
on disk otherwise (an unpacked `git archive`). A `#anchor` (alone: the same file) must be the
anchor of a heading of its target, computed as GitHub does (lower case; punctuation other than
`-` and `_` dropped; spaces become `-`; repeated headings get `-1`, `-2`, ...); an anchor on a
target that is not Markdown is an error. A link may not leave the repository.

Prints one line per fault (`FILE:LINE: target: reason`) and a summary; exit 0 when there is no
fault, 1 otherwise (2: usage).
"""
import os
import re
import subprocess
import sys
import tempfile

INLINE = re.compile(r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]*(?:\([^()\s]*\)[^()\s>]*)*)>?(?:\s+"[^"]*")?\s*\)')
REFDEF = re.compile(r'^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$')
HTML = re.compile(r'\b(?:href|src)\s*=\s*"([^"]*)"')
SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*:')
FENCE = re.compile(r'^\s{0,3}(`{3,}|~{3,})')
HEADING = re.compile(r'^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$')


def strip_code_spans(line):
    """The line with the contents of `code spans` blanked (links inside them are code)."""
    out, i = [], 0
    while i < len(line):
        if line[i] == '`':
            n = len(line[i:]) - len(line[i:].lstrip('`'))
            ticks = line[i:i + n]
            end = line.find(ticks, i + n)
            if end < 0:
                out.append(line[i:])
                break
            out.append(' ' * (end + n - i))
            i = end + n
        else:
            out.append(line[i])
            i += 1
    return ''.join(out)


def unfenced_lines(text):
    """(line number, line) for the lines outside fenced code blocks."""
    fence = None
    for no, line in enumerate(text.split('\n'), 1):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        yield no, line


def prose_lines(text):
    """(line number, line) for the lines outside fenced code blocks, code spans blanked."""
    for no, line in unfenced_lines(text):
        yield no, strip_code_spans(line)


def slug(heading):
    """GitHub's anchor of a heading's text."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)   # a link's text only
    text = re.sub(r'<[^>]+>', '', text)                          # inline HTML
    text = text.lower()
    text = ''.join(c for c in text if c.isalnum() or c in ' -_')
    return text.replace(' ', '-')


def anchors(path, cache={}):
    if path not in cache:
        seen, result = {}, set()
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for _, line in unfenced_lines(text):
            h = HEADING.match(line)
            if not h:
                continue
            s = slug(h.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            result.add(s if n == 0 else '%s-%d' % (s, n))
        cache[path] = result
    return cache[path]


def tracked_paths(root):
    """The set of files and directories git tracks under root, or None outside a work tree."""
    try:
        out = subprocess.run(['git', '-C', root, 'ls-files', '-z'], capture_output=True,
                             check=True).stdout.decode('utf-8', 'replace')
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = set()
    for f in out.split('\0'):
        if not f:
            continue
        paths.add(f)
        d = os.path.dirname(f)
        while d:
            paths.add(d)
            d = os.path.dirname(d)
    return paths


def doc_files(root):
    files = ['README.md'] if os.path.isfile(os.path.join(root, 'README.md')) else []
    docdir = os.path.join(root, 'doc')
    for dirpath, dirnames, filenames in os.walk(docdir):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith('.md'):
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
    return files


def check(root):
    """Returns (number of links checked, list of fault lines)."""
    root = os.path.realpath(root)
    tracked = tracked_paths(root)
    faults, checked = [], 0
    for rel in doc_files(root):
        path = os.path.join(root, rel)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for no, line in prose_lines(text):
            targets = [m.group(1) for m in INLINE.finditer(line)]
            targets += [m.group(1) for m in HTML.finditer(line)]
            m = REFDEF.match(line)
            if m:
                targets.append(m.group(1))
            for target in targets:
                if not target or SCHEME.match(target) or target.startswith('//'):
                    continue
                checked += 1
                fault = check_target(root, tracked, rel, target)
                if fault:
                    faults.append('%s:%d: %s: %s' % (rel, no, target, fault))
    return checked, faults


def check_target(root, tracked, rel, target):
    file_part, _, anchor = target.partition('#')
    file_part = re.sub(r'%20', ' ', file_part.split('?')[0])
    if file_part:
        if file_part.startswith('/'):
            dest = os.path.normpath(os.path.join(root, file_part.lstrip('/')))
        else:
            dest = os.path.normpath(os.path.join(root, os.path.dirname(rel), file_part))
    else:
        dest = os.path.join(root, rel)
    dest_rel = os.path.relpath(dest, root)
    if dest_rel == os.pardir or dest_rel.startswith(os.pardir + os.sep):
        return 'leaves the repository'
    if not os.path.exists(dest):
        return 'no such file'
    if tracked is not None and dest_rel != '.' and dest_rel not in tracked:
        return 'not tracked by git (only in this checkout)'
    if anchor:
        if not dest.endswith('.md') or not os.path.isfile(dest):
            return 'an anchor on a target that is not a Markdown file'
        if anchor not in anchors(dest):
            return 'no heading with the anchor #%s in %s' % (anchor, dest_rel)
    return None


def self_test():
    """The checker must find each planted fault and accept each good link."""
    good = {
        'README.md': '# Top\n\n## Use it: `LD_PRELOAD`, etc.\n\n## Use it: `LD_PRELOAD`, etc.\n\n'
                     'See [a](doc/a.md), [b](doc/a.md#second-part), [c](#use-it-ld_preload-etc),\n'
                     '[d](#use-it-ld_preload-etc-1), ![img](doc/pic.svg), [dir](doc/),\n'
                     '[web](https://example.org/x.md), [ref]\n\n[ref]: doc/a.md#first\n'
                     '<img src="doc/pic.svg">\n',
        'doc/a.md': '# First\n\n## Second part\n\n[back](../README.md#top)\n\n'
                    '```\n[not a link](nowhere.md)\n```\n\nCode: `[x](nowhere.md)`\n',
        'doc/pic.svg': '<svg/>\n',
    }
    bad = {
        'doc/b.md': '# B\n\n[1](missing.md)\n[2](a.md#no-such-heading)\n[3](../../outside.md)\n'
                    '![4](pic.png)\n[5](pic.svg#frag)\n[6](#b-x)\n\n[r]: gone.md\n'
                    '<a href="also-gone.md">x</a>\n',
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in good.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
            with open(os.path.join(tmp, name), 'w') as f:
                f.write(text)
        n, faults = check(tmp)
        if faults or n != 9:
            print('self-test: good tree: expected 9 links and no fault, got %d links:' % n)
            print('\n'.join(faults))
            return 1
        for name, text in bad.items():
            with open(os.path.join(tmp, name), 'w') as f:
                f.write(text)
        n, faults = check(tmp)
        expect = ['doc/b.md:3: missing.md: no such file',
                  'doc/b.md:4: a.md#no-such-heading: no heading',
                  'doc/b.md:5: ../../outside.md: leaves the repository',
                  'doc/b.md:6: pic.png: no such file',
                  'doc/b.md:7: pic.svg#frag: an anchor on a target that is not a Markdown file',
                  'doc/b.md:8: #b-x: no heading',
                  'doc/b.md:10: gone.md: no such file',
                  'doc/b.md:11: also-gone.md: no such file']
        missing = [e for e in expect if not any(f.startswith(e) for f in faults)]
        if missing or len(faults) != len(expect):
            print('self-test: bad tree: expected %d faults, got:' % len(expect))
            print('\n'.join(faults) or '(none)')
            print('missing:', *missing, sep='\n  ')
            return 1
        # git: a file on disk that git does not track is a fault in a work tree
        if subprocess.run(['git', '--version'], capture_output=True).returncode == 0:
            os.remove(os.path.join(tmp, 'doc/b.md'))
            env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@t',
                       GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@t')
            subprocess.run(['git', 'init', '-q', tmp], check=True, env=env)
            subprocess.run(['git', '-C', tmp, 'add', 'README.md', 'doc/a.md'], check=True,
                           env=env)
            n, faults = check(tmp)
            want = 'not tracked by git'
            if not faults or not all(want in f for f in faults) or \
                    not any('doc/pic.svg' in f for f in faults):
                print('self-test: untracked doc/pic.svg: expected "%s" faults, got:' % want)
                print('\n'.join(faults) or '(none)')
                return 1
    print('self-test: ok (good links accepted, %d planted faults found)' % len(expect))
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == '--self-test':
        return self_test()
    if len(argv) != 2 or argv[1].startswith('-'):
        print(__doc__.strip().split('\n\n')[1], file=sys.stderr)
        return 2
    root = argv[1]
    files = doc_files(root)
    if 'README.md' not in files:
        print('docs-links: no README.md in %s' % root)
        return 1
    n, faults = check(root)
    for f in faults:
        print(f)
    print('docs-links: %d files, %d relative links, %d faults' % (len(files), n, len(faults)))
    return 1 if faults else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
