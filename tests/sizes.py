#!/usr/bin/env python3
"""House limits (README, STYLE.md): no source file over 900 lines, no function over 150 lines
(an instruction decoder's switch excepted: listed below), and the layers of src/ kept: a folder
includes only the folders below it (LAYERS). Prints the offenders; exit 1 if any.
Functions are found as in the code's style: a definition starts at column 0 with a name and
'(' and its body's '{' alone on the next line, and ends at the next '}' at column 0."""
import glob
import re
import sys

MAX_FILE, MAX_FUNC = 900, 150
EXEMPT = set()

# what each folder may include besides itself: recording never sees outputs, outputs never see
# the recorder, and only cmd/ sees both sides
LAYERS = {
    "bpf": set(),  # programs for the kernel (clang -target bpf) and the records they share with record/
    "base": set(),
    "probe": {"base"},
    "cpython": {"base", "probe"},
    "record": {"base", "probe", "cpython", "bpf"},
    "analysis": {"base", "cpython"},
    "output": {"base", "analysis", "cpython"},
    "import": {"base", "analysis"},
    "cmd": {"base", "probe", "cpython", "record", "analysis", "output", "import"},
}

bad = []
for path in sorted(glob.glob("src/*/*.[ch]")):
    folder = path.split("/")[1]
    allowed = LAYERS.get(folder)
    if allowed is None:
        bad.append(f"{path}: folder {folder} has no layer in tests/sizes.py")
        continue
    for n, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
        m = re.match(r'#include "(\w+)/', line)
        if m and m.group(1) != folder and m.group(1) not in allowed:
            bad.append(f"{path}:{n}: {folder}/ includes {m.group(1)}/ ({line.strip()})")
for path in sorted(glob.glob("src/**/*.[ch]", recursive=True)):
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    if len(lines) > MAX_FILE:
        bad.append(f"{path}: {len(lines)} lines (limit {MAX_FILE})")
    start = name = None
    for i, line in enumerate(lines):
        if start is None and line == "{" and i > 0:
            m = re.search(r"(\w+)\s*\([^;]*$", lines[i - 1]) or re.search(r"(\w+)\s*\(", " ".join(lines[max(0, i - 3):i]))
            if m:
                start, name = i, m.group(1)
        elif start is not None and line.startswith("}"):
            n = i - start + 1
            if n > MAX_FUNC and name not in EXEMPT:
                bad.append(f"{path}:{start}: {name} is {n} lines (limit {MAX_FUNC})")
            start = None
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
