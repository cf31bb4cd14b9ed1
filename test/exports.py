#!/usr/bin/python3
"""exports.py -- the shared libraries export exactly the public names (issue 17).

    exports.py SOURCE_DIR LIB.so...

Four lists must agree:
  - the am_* functions declared in include/amalloc.h, plus the C and C++ names that
    preload/override.c defines with default visibility (the public names);
  - the global names of src/exports.map (the version script the libraries are linked with);
  - the symbols of debian/libamalloc0.symbols, for each library (dpkg-gensymbols checks the
    packaged libraries against it; this check runs on every build);
  - the defined dynamic symbols of each LIB.so (nm -D --defined-only), which must also be
    unversioned (an AMALLOC_x version on malloc would stop LD_PRELOAD from interposing glibc's
    versioned malloc@GLIBC_2.2.5: src/exports.map).
"""
import os
import re
import subprocess
import sys

src = sys.argv[1]
libs = sys.argv[2:]
failures = 0


def check(ok, what):
    global failures
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1


def diff(a, b, an, bn):
    only_a, only_b = sorted(a - b), sorted(b - a)
    msg = []
    if only_a:
        msg.append(f"only in {an}: {' '.join(only_a)}")
    if only_b:
        msg.append(f"only in {bn}: {' '.join(only_b)}")
    return "; ".join(msg)


def read(rel):
    with open(os.path.join(src, rel)) as f:
        return f.read()


def strip_c_comments(text):
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


# the public names: amalloc.h's am_* function declarations, override.c's exported definitions
header = strip_c_comments(read("include/amalloc.h"))
api = set(re.findall(r"\b(am_\w+)\s*\(", header)) - set(
    re.findall(r"#\s*define\s+(am_\w+)", header))
# struct tags and types are not functions: keep the names followed by "(" at a declaration
api = {n for n in api if re.search(r"[\w*]\s+\**" + n + r"\s*\(", header)}
override = strip_c_comments(read("preload/override.c"))
# AM_ALIAS(f) declarations (one a line) and AM_EXPORT definitions
aliased = set(re.findall(r"^[^#\n]*?\b(\w+)\s*\([^;{\n]*\)\s*AM_ALIAS\(", override, flags=re.M))
exported = set(re.findall(r"\bAM_EXPORT\s+[\w\s*]*?\b(\w+)\s*\(", override))
names_ov = aliased | exported
c_names = {n for n in names_ov if not n.startswith("_Z")}
cxx_names = {n for n in names_ov if n.startswith("_Z")}
public = api | c_names | cxx_names
check(len(api) > 30 and len(c_names) > 20 and len(cxx_names) == 20,
      f"public names found: {len(api)} am_* in amalloc.h, {len(c_names)} C and "
      f"{len(cxx_names)} C++ names (new and delete, every form) in override.c")

# the version script
vs = strip_c_comments(read("src/exports.map"))
m = re.search(r"global:(.*?)local:\s*\*\s*;", vs, flags=re.S)
check(m is not None, "src/exports.map has global: ... local: *;")
mapped = set(re.findall(r"\b(\w+)\s*;", m.group(1))) if m else set()
check(mapped == public, "src/exports.map lists exactly the public names " +
      diff(mapped, public, "exports.map", "amalloc.h/override.c"))
check(re.match(r"\s*\{", vs) is not None, "src/exports.map's version node is anonymous")

# the symbols file, per library
symfile = {}
cur = None
for line in read("debian/libamalloc0.symbols").splitlines():
    if line and not line[0].isspace() and not line.startswith(("*", "#", "|")):
        cur = line.split()[0]
        symfile[cur] = set()
    elif line.startswith(" ") and cur:
        symfile[cur].add(line.split()[0].split("@")[0])

for lib in libs:
    base = os.path.basename(lib)
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    check(out.returncode == 0, f"nm -D {base}")
    dyn = {l.split()[-1] for l in out.stdout.splitlines() if l.strip()}
    versioned = sorted(n for n in dyn if "@" in n)
    names = {n.split("@")[0] for n in dyn}
    check(names == public, f"{base} exports exactly the public names ({len(names)}) " +
          diff(names, public, base, "amalloc.h/override.c"))
    check(not versioned, f"{base}: no versioned symbol " + " ".join(versioned[:5]))
    soname = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True).stdout
    sm = re.search(r"\(SONAME\).*\[(.*)\]", soname)
    so = sm.group(1) if sm else ""
    check(so in symfile, f"{base}: SONAME {so or '(none)'} has a section in "
          "debian/libamalloc0.symbols")
    if so in symfile:
        check(symfile[so] == names, f"debian/libamalloc0.symbols {so} lists its exports " +
              diff(symfile[so], names, "symbols", base))

print("exports: all checks passed" if failures == 0 else f"exports: {failures} check(s) failed")
sys.exit(1 if failures else 0)
