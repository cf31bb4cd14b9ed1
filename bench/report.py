"""report.py -- the tables, CSV files and charts of bench/compare.sh (standard library only).

    report.py table RAW.tsv ALLOCS RESULTS-DIR STAMP TMP-DIR NOTE
    report.py micro MICRO.csv ALLOCS
    report.py icount ICOUNT.tsv ALLOCS RESULTS-DIR STAMP ITERATIONS

RAW.tsv lines (tab-separated): kind, workload, allocator, run, seconds, peak RSS KiB, minor page
faults, status (ok / failed / checksum), extra (requests/s for redis). Lines without the faults
field (raw files written before it was added) are read with the faults unknown. ALLOCS: the
allocators, comma-separated, glibc first.

The table and latest.csv give per workload and allocator the medians of time, peak RSS and minor
faults, their ratios to glibc's and mimalloc's medians, and the geometric means of the ratios
(workloads and real programs separately; kind "scaling" is left out of them).
"""
import csv
import math
import os
import shutil
import statistics
import subprocess
import sys


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt(x, spec):
    return format(x, spec) if x is not None else "-"


def ratio(a, b):
    return a / b if a is not None and b else None


def table(raw, allocs, outdir, stamp, tmpdir, note):
    rows = [line.rstrip("\n").split("\t") for line in open(raw) if line.strip()]
    order, kinds, data = [], {}, {}
    for row in rows:
        if len(row) == 8:  # an old raw file: no faults field
            row = row[:6] + [""] + row[6:]
        kind, name, alloc, run, secs, kib, faults, status, extra = row
        if name not in kinds:
            order.append(name)
            kinds[name] = kind
        d = data.setdefault((name, alloc), {"t": [], "m": [], "f": [], "x": [], "runs": 0, "bad": []})
        d["runs"] += 1
        if status == "ok":
            d["t"].append(float(secs))
            d["m"].append(float(kib))
            if faults:
                d["f"].append(float(faults))
            if extra:
                d["x"].append(float(extra))
        else:
            d["bad"].append(status)
    med = {}  # (workload, allocator) -> (time, RSS KiB, faults, requests/s), medians or None
    for key, d in data.items():
        med[key] = tuple(statistics.median(d[k]) if d[k] else None for k in ("t", "m", "f", "x"))
    has_mi = "mimalloc" in allocs
    out = []
    head = ["kind", "workload", "allocator", "runs_ok", "runs", "median_time_s", "median_peak_rss_kib",
            "median_minor_faults", "time_vs_glibc", "rss_vs_glibc", "faults_vs_glibc",
            "time_vs_mimalloc", "rss_vs_mimalloc", "faults_vs_mimalloc", "requests_per_s", "status"]
    line = "%-14s %-10s %8s %9s %9s %7s %7s %7s %7s %7s %7s %10s  %s"
    gline = "%-25s %8s %9s %9s %7s %7s %7s %7s %7s %7s"  # geomeans: the label spans two columns
    print()
    print("Workloads and real programs (%s): median wall time, peak RSS and minor page faults"
          " (thousands); ratios < 1 are better" % note)
    hdr = line % ("workload", "allocator", "time s", "RSS MiB", "faults k", "t/glibc", "m/glibc",
                  "f/glibc", "t/mi", "m/mi", "f/mi", "req/s", "runs")
    print(hdr)
    print("-" * len(hdr))
    ratios = {}  # (kind, alloc) -> lists
    keys = ("tg", "mg", "fg", "tm", "mm", "fm")
    for name in order:
        g = med.get((name, "glibc"), (None,) * 4)
        mi = med.get((name, "mimalloc"), (None,) * 4)
        for alloc in allocs:
            if (name, alloc) not in data:
                continue
            d = data[(name, alloc)]
            t, m, f, x = med[(name, alloc)]
            vs = [ratio(t, g[0]), ratio(m, g[1]), ratio(f, g[2])]
            vs += [ratio(t, mi[0]), ratio(m, mi[1]), ratio(f, mi[2])] if has_mi else [None] * 3
            r = ratios.setdefault((kinds[name], alloc), {k: [] for k in keys})
            for k, v in zip(keys, vs):
                if v is not None:
                    r[k].append(v)
            status = "ok" if not d["bad"] else ",".join(sorted(set(d["bad"])))
            runs = "%d/%d" % (len(d["t"]), d["runs"]) + ("" if status == "ok" else " " + status.upper())
            print(line % (name, alloc, fmt(t, ".3f"), fmt(m / 1024 if m else None, ".1f"),
                          fmt(f / 1000 if f is not None else None, ".1f"),
                          *(fmt(v, ".2f") for v in vs), fmt(x, ".0f") if x else "", runs))
            out.append([kinds[name], name, alloc, len(d["t"]), d["runs"], fmt(t, ".4f"),
                        fmt(m, ".0f"), fmt(f, ".0f"), *(fmt(v, ".4f") for v in vs),
                        fmt(x, ".0f") if x else "", status])
        print()
    for kind, label in (("workload", "geomean, workloads"), ("real", "geomean, real programs")):
        if not any(k == kind for k, _ in ratios):
            continue
        print(gline % (label, "", "", "", "t/glibc", "m/glibc", "f/glibc", "t/mi", "m/mi", "f/mi"))
        for alloc in allocs:
            r = ratios.get((kind, alloc))
            if not r:
                continue
            gm = [geomean(r[k]) for k in keys]
            print(gline % ("  " + alloc, "", "", "", *(fmt(v, ".2f") for v in gm)))
            out.append(["geomean", "geomean-" + ("workloads" if kind == "workload" else "real"), alloc,
                        "", "", "", "", "", *(fmt(v, ".4f") for v in gm), "", ""])
        print()
    # scaling: mixed runs the same number of steps per thread with 2 threads (every 8th block
    # freed by the other thread) as mixed1 with 1, so 2 * t(mixed1) / t(mixed) is the
    # throughput gained from the second thread (2.0 = perfect on 2 cores)
    if any(kinds.get(n) == "scaling" for n in order) and "mixed" in kinds:
        print("Scaling, mixed 1 -> 2 threads (cross-thread frees): throughput ratio 2*t(1)/t(2)")
        for alloc in allocs:
            t1, t2 = med.get(("mixed1", alloc), (None,))[0], med.get(("mixed", alloc), (None,))[0]
            if t1 and t2:
                print("  %-21s %5.2f" % (alloc, 2 * t1 / t2))
        print()
    latest = os.path.join(outdir, "latest.csv")
    with open(latest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(out)
    shutil.copy(latest, os.path.join(outdir, stamp + ".csv"))
    print("written: %s (and %s.csv)" % (latest, stamp))
    chart(order, allocs, med, outdir, stamp, tmpdir)


def gnuplot(script):
    if not shutil.which("gnuplot"):
        print("gnuplot missing: no chart")
        return False
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("gnuplot failed: " + r.stderr.strip()[-300:])
        return False
    return True


def chart(order, allocs, med, outdir, stamp, tmpdir):
    others = [a for a in allocs if a != "glibc"]
    dat = os.path.join(tmpdir, "ratios.dat")
    with open(dat, "w") as f:
        f.write("workload " + " ".join(others) + "\n")
        for name in order:
            g = med.get((name, "glibc"), (None, None, None))
            t = [ratio(med.get((name, a), (None,) * 3)[0], g[0]) for a in others]
            f.write(name + " " + " ".join(fmt(v, ".4f") if v else "NaN" for v in t) + "\n")
        f.write("\n\n")
        f.write("workload " + " ".join(others) + "\n")
        for name in order:
            g = med.get((name, "glibc"), (None, None, None))
            m = [ratio(med.get((name, a), (None,) * 3)[1], g[1]) for a in others]
            f.write(name + " " + " ".join(fmt(v, ".4f") if v else "NaN" for v in m) + "\n")
    png = os.path.join(outdir, "latest.png")
    n = len(others)
    cols = " ".join("'%s' index 0 using %d:xtic(1) title columnheader(%d)%s" % (
        dat, i + 2, i + 2, "," if i < n - 1 else "") for i in range(n))
    cols_rss = cols.replace("index 0", "index 1")
    width = max(900, 80 * len(order) * max(1, n) // 2)
    script = f"""
set terminal pngcairo size {width},900 font ",10"
set output '{png}'
set multiplot layout 2,1
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top
set grid ytics
set xtics rotate by -30
set yrange [0:*]
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 front
set title 'wall time relative to glibc (median; lower is better)'
plot {cols}
set title 'peak RSS relative to glibc (median; lower is better)'
plot {cols_rss}
unset multiplot
"""
    if gnuplot(script):
        shutil.copy(png, os.path.join(outdir, stamp + ".png"))
        print("written: %s" % png)
    # RSS over time of the frag and waves workloads, run 1 of each allocator
    for wl in ("frag", "waves"):
        series = [(a, os.path.join(tmpdir, "%s-rss.%s.1" % (wl, a))) for a in allocs]
        series = [(a, p) for a, p in series if os.path.exists(p) and os.path.getsize(p) > 0]
        if not series:
            continue
        png2 = os.path.join(outdir, "%s-rss.png" % wl)
        plots = ", ".join("'%s' using ($1/1000):($2/1024) with lines lw 2 title '%s'" % (p, a)
                          for a, p in series)
        script = f"""
set terminal pngcairo size 1000,500 font ",10"
set output '{png2}'
set title '{wl} workload: RSS over time (run 1)'
set xlabel 'seconds'
set ylabel 'RSS (MiB)'
set grid
set key outside right top
plot {plots}
"""
        if gnuplot(script):
            shutil.copy(png2, os.path.join(outdir, "%s-rss-%s.png" % (wl, stamp)))
            for old in os.listdir(outdir):
                if old.startswith("%s-rss-latest." % wl):
                    os.remove(os.path.join(outdir, old))
            for a, p in series:
                shutil.copy(p, os.path.join(outdir, "%s-rss-latest.%s.tsv" % (wl, a)))
            print("written: %s" % png2)


def micro(path, allocs):
    lines = open(path).read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("name,"))
    rows = list(csv.DictReader(lines[start:]))
    cases, val = [], {}
    for r in rows:
        parts = r["name"].split("/")
        if len(parts) < 2:
            continue
        case, alloc = parts[0], parts[1]
        th = [p for p in parts[2:] if p.startswith("threads:")]
        if th:
            case += "/" + th[0].replace("threads:", "t")
        if r.get("error_occurred") == "true" or not r.get("items_per_second"):
            continue
        if case not in cases:
            cases.append(case)
        val[(case, alloc)] = 1e9 / float(r["items_per_second"])
    present = [a for a in allocs if any(k[1] == a for k in val)]
    print()
    print("Micro benchmarks: nanoseconds per operation (per malloc+free pair; threaded cases: wall"
          " time / total pairs), lower is better")
    hdr = "%-18s" % "case" + "".join("%10s" % a[:10] for a in present)
    if "glibc" in present:
        hdr += "   best/glibc"
    print(hdr)
    print("-" * len(hdr))
    for c in cases:
        vs = [val.get((c, a)) for a in present]
        line = "%-18s" % c + "".join("%10s" % fmt(v, ".1f" if v and v < 1000 else ".0f") for v in vs)
        g = val.get((c, "glibc"))
        others = [(v, a) for v, a in zip(vs, present) if v and a != "glibc"]
        if g and others:
            v, a = min(others)
            line += "   %s %.2f" % (a, v / g)
        print(line)
    for a in present:
        if a == "glibc":
            continue
        gm = geomean([val[(c, a)] / val[(c, "glibc")] for c in cases
                      if (c, a) in val and (c, "glibc") in val])
        if gm:
            print("geomean %s/glibc: %.2f" % (a, gm))
    print()


def icount(path, allocs, outdir, stamp, diff):
    vals = {}
    for line in open(path):
        a, size, n, total = line.split()
        vals[(a, int(size), int(n))] = int(total)
    sizes = sorted({k[1] for k in vals})
    ns = sorted({k[2] for k in vals})
    if len(ns) < 2:
        print("instruction counts: not enough data")
        return
    lo, hi = ns[0], ns[-1]
    print("Instructions per malloc+free pair (callgrind, difference of %d and %d iterations)" % (hi, lo))
    print("%-10s" % "allocator" + "".join("%10s" % ("%d B" % s) for s in sizes))
    rows = []
    for a in allocs:
        if not any(k[0] == a for k in vals):
            continue
        per = []
        for s in sizes:
            if (a, s, lo) in vals and (a, s, hi) in vals:
                per.append((vals[(a, s, hi)] - vals[(a, s, lo)]) / (hi - lo))
            else:
                per.append(None)
        print("%-10s" % a + "".join("%10s" % fmt(v, ".1f") for v in per))
        rows.append([a] + [fmt(v, ".2f") for v in per])
    latest = os.path.join(outdir, "icount-latest.csv")
    with open(latest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["allocator"] + ["instr_per_pair_%dB" % s for s in sizes])
        w.writerows(rows)
    shutil.copy(latest, os.path.join(outdir, "icount-%s.csv" % stamp))
    print("written: %s" % latest)
    print()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "table":
        table(sys.argv[2], sys.argv[3].split(","), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
    elif mode == "micro":
        micro(sys.argv[2], sys.argv[3].split(","))
    elif mode == "icount":
        icount(sys.argv[2], sys.argv[3].split(","), sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        sys.exit("report.py: unknown mode " + mode)
