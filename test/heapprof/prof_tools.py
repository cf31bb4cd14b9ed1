#!/usr/bin/python3
"""prof_tools.py -- the heap profiler seen from outside the process (src/prof.c).

  prof_tools.py leak PROF_EXE            the leak report (AMALLOC_PROF_LEAKS=1) of `prof leak`
                                         names leaky_site first and estimates its bytes within 20%
  prof_tools.py pprof SITES_EXE          google-pprof --text and --svg read the profile of a C++
                                         program and name its functions (widgets::Cache::fill)
  prof_tools.py real AMALLOC_RUN         python3 and g++ under `amalloc-run --prof`: each writes
                                         profiles whose top site (allocated bytes) is in the
                                         program itself (python3.11, cc1plus)
Exit status 0 when every check passed, 1 otherwise, 77 when a tool is missing (skip).
"""
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = 0


def check(ok, what):
    global failures
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1
    return ok


def read_profile(path):
    """(period, [(n1, s1, n2, s2, [addresses])], [(start, end, offset, path)])"""
    with open(path) as f:
        text = f.read()
    head, _, maps_text = text.partition("\nMAPPED_LIBRARIES:\n")
    lines = head.split("\n")
    m = re.match(r"heap profile:\s*(\d+):\s+(\d+)\s+\[\s*(\d+):\s+(\d+)\]\s+@\s+heap_v2/(\d+)", lines[0])
    if not m:
        raise ValueError("%s: bad header %r" % (path, lines[0]))
    period = int(m.group(5))
    entries = []
    for line in lines[1:]:
        if not line.strip():
            continue
        m = re.match(r"\s*(\d+):\s+(\d+)\s+\[\s*(\d+):\s+(\d+)\]\s+@(.*)$", line)
        if not m:
            raise ValueError("%s: bad line %r" % (path, line))
        addrs = [int(a, 16) for a in m.group(5).split()]
        entries.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)), addrs))
    maps = []
    for line in maps_text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        maps.append((lo, hi, int(parts[2], 16), parts[5] if len(parts) > 5 else ""))
    return period, entries, maps


def estimate(count, size, period):
    if count == 0:
        return 0.0
    return size / (1 - math.exp(-(size / count) / period))


def object_of(addr, maps):
    for lo, hi, _, path in maps:
        if lo <= addr < hi:
            return path
    return "?"


def top_object(path):
    """the object holding frame 0 of the line with the most allocated bytes (estimated)"""
    period, entries, maps = read_profile(path)
    total = sum(estimate(n2, s2, period) for _, _, n2, s2, _ in entries)
    best = max(entries, key=lambda e: estimate(e[2], e[3], period), default=None)
    if best is None or not best[4]:
        return None, total, maps
    return object_of(best[4][0], maps), total, maps


def test_leak(prof_exe):
    env = dict(os.environ, AMALLOC_PROF_LEAKS="1")
    r = subprocess.run([prof_exe, "leak"], env=env, capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "prof leak exits 0 (status %d)" % r.returncode)
    m = re.search(r"leaked (\d+) bytes", r.stdout)
    if not check(m is not None, "prof leak prints the bytes it leaked"):
        return
    leaked = int(m.group(1))
    report = r.stderr.splitlines()
    first = [i for i, l in enumerate(report) if l.startswith("amalloc: leak: ")]
    if not check(len(first) > 0, "the leak report has an entry:\n" + r.stderr[:2000]):
        return
    entry = report[first[0]]
    stack = []
    for l in report[first[0] + 1:]:
        if not l.startswith("amalloc:     #"):
            break
        stack.append(l)
    check(len(stack) > 0 and "leaky_site" in stack[0],
          "the largest leak's frame 0 is leaky_site: " + (stack[0] if stack else "(no frames)"))
    m = re.match(r"amalloc: leak: about (\d+) bytes in (\d+) blocks", entry)
    if check(m is not None, "the entry gives bytes and blocks: " + entry):
        est = int(m.group(1))
        check(abs(est - leaked) <= 0.2 * leaked,
              "estimated %d bytes leaked, %d exact (%.1f%% off; within 20%%)" % (est, leaked, 100.0 * (est - leaked) / leaked))


def test_pprof(sites_exe):
    pprof = shutil.which("google-pprof") or shutil.which("pprof")
    if pprof is None:
        print("SKIP: google-pprof is not installed (Debian google-perftools)")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as d:
        prof = os.path.join(d, "sites.heap")
        env = dict(os.environ, AMALLOC_PROF="1")
        r = subprocess.run([sites_exe, prof], env=env, capture_output=True, text=True, timeout=120)
        if not check(r.returncode == 0 and os.path.exists(prof), "sites writes its profile: " + r.stderr):
            return
        r = subprocess.run([pprof, "--text", sites_exe, prof], capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, "google-pprof --text exits 0: " + r.stderr[-500:])
        text = r.stdout
        rows = [l for l in text.splitlines() if re.match(r"\s*[\d.]+\s+[\d.]+%", l)]
        check(any("widgets::Cache::fill" in l for l in rows),
              "google-pprof --text names widgets::Cache::fill:\n" + "\n".join(rows[:12]))
        check(any("widgets::Cache::index" in l for l in rows), "google-pprof --text names widgets::Cache::index")
        # Cache::fill allocated ~80 MB, index ~15-20 MB: the cumulative column ranks them
        cum = {}
        for l in rows:
            f = l.split()
            if len(f) >= 6:
                cum[" ".join(f[5:])] = float(f[3])
        fill = max((v for k, v in cum.items() if "Cache::fill" in k), default=0)
        index = max((v for k, v in cum.items() if "Cache::index" in k), default=0)
        check(60 <= fill <= 110, "Cache::fill: %.1f MB live (about 80 expected)" % fill)
        check(fill > 2 * index, "Cache::fill above Cache::index (%.1f vs %.1f MB)" % (fill, index))
        svg = os.path.join(d, "sites.svg")
        with open(svg, "w") as out:
            r = subprocess.run([pprof, "--svg", sites_exe, prof], stdout=out, stderr=subprocess.PIPE,
                               text=True, timeout=300)
        body = open(svg).read()
        check(r.returncode == 0 and "<svg" in body, "google-pprof --svg writes an SVG (%d bytes)" % len(body))
        check("Cache" in body and "fill" in body, "the SVG names Cache::fill")


def run_profiled(run, prefix, argv, cwd):
    r = subprocess.run([run, "--prof=" + prefix] + argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    return r


def test_real(run):
    with tempfile.TemporaryDirectory() as d:
        # python3: a list of strings and a dict; its allocations come from the interpreter
        py = "/usr/bin/python3"
        if os.path.exists(py):
            r = run_profiled(run, os.path.join(d, "py.%p"), [py, "-c",
                             "d = {i: str(i) * 20 for i in range(400000)}\nprint(len(d))"], d)
            check(r.returncode == 0 and r.stdout.strip() == "400000", "python3 runs under amalloc-run --prof")
            profiles = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("py.") and f.endswith(".heap")]
            check(len(profiles) == 1, "python3 wrote one profile: %s" % profiles)
            check("heap profile written to" in r.stderr, "the exit message names the profile")
            if profiles:
                obj, total, _ = top_object(profiles[0])
                check(obj is not None and "python3" in os.path.basename(obj),
                      "python3's top allocation site is in %s (python3 expected; %.0f MB allocated)" % (obj, total / 1e6))
        else:
            print("skip: no /usr/bin/python3")
        # g++: the driver runs cc1plus and as, each profiled; cc1plus allocates the most
        gxx = shutil.which("g++")
        if gxx:
            src = os.path.join(d, "t.cc")
            with open(src, "w") as f:
                f.write("#include <map>\n#include <string>\n#include <vector>\n#include <iostream>\n"
                        "int main() { std::map<std::string, std::vector<int>> m; m[\"a\"].push_back(1);"
                        " std::cout << m.size() << std::endl; }\n")
            r = run_profiled(run, os.path.join(d, "gxx.%p"), [gxx, "-O1", "-c", src, "-o", os.path.join(d, "t.o")], d)
            check(r.returncode == 0, "g++ -c runs under amalloc-run --prof: " + r.stderr[-300:])
            profiles = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("gxx.") and f.endswith(".heap")]
            check(len(profiles) >= 2, "g++ and the programs it ran wrote %d profiles" % len(profiles))
            best = None
            for p in profiles:
                obj, total, maps = top_object(p)
                if best is None or total > best[1]:
                    best = (obj, total)
            check(best is not None and best[0] is not None and "cc1plus" in best[0],
                  "the profile with the most bytes allocated has its top site in %s (cc1plus expected)" % (best and best[0]))
        else:
            print("skip: no g++")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("leak", "pprof", "real"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    {"leak": test_leak, "pprof": test_pprof, "real": test_real}[sys.argv[1]](sys.argv[2])
    print("%d failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
