"""`export --format speedscope` and `--format gecko` on a recording of a known target
(tests/targets/named_work.py: two threads spinning in alpha_spinner and beta_spinner).

speedscope: the document validates against the file-format JSON schema shipped by the
`speedscope` npm package (installed outside the repository, in GILSCOPE_NPM or /opt/gilscope-npm,
by npm when it is missing), and its per-thread profiles add up to exactly what `export --format
folded --what KIND` says for all threads, frame by frame, in nanoseconds (samples x period).
gecko (the Firefox Profiler's processed format): the documented required fields, tables whose
columns have their `length`, indexes in range, samples in time order within the recording, the
spinner functions in the samples of their own threads, and GIL-state markers whose durations add
up to each thread's held and waited time in `report --json`."""
import collections
import json
import os
import shutil
import subprocess

import pytest

from conftest import GILSCOPE, PYTHONS, ROOT, npm_module, record, target

KINDS = ["hold", "wait", "cpu", "offcpu", "offgil", "blocking"]


def speedscope_schema():
    """speedscope's schema, from npm's speedscope (installed when missing)."""
    with open(os.path.join(npm_module("speedscope@1"), "dist", "release", "file-format-schema.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module", params=["pyenv-3.11.7-shared", "debian-3.15-stripped"])
def run(request, tmp_path_factory):
    python = PYTHONS[request.param]
    if not os.access(python, os.X_OK):
        pytest.skip(f"SKIPPED: {python} is not installed on this machine")
    d = tmp_path_factory.mktemp("formats")
    args = ("--native",) if "3.15" in request.param else ()  # frame pointers: native frames too
    r = record(d, [python, target("named_work.py")], args=args)
    assert r.proc.returncode == 0, r.proc.stderr
    r.native = bool(args)
    return d, r


def gs(*args):
    p = subprocess.run([GILSCOPE, *map(str, args)], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def folded(rec, kind):
    out = collections.Counter()
    for line in gs("export", "--format", "folded", "--what", kind, rec).decode().splitlines():
        stack, n = line.rsplit(" ", 1)
        out[stack or "[no Python frame]"] += int(n)  # a stack of hidden frames only: no frame either
    return out


def test_speedscope_validates_and_matches_folded(run):
    jsonschema = pytest.importorskip("jsonschema", reason="SKIPPED: python3-jsonschema is not installed")
    schema = speedscope_schema()
    d, r = run
    out = d / "profile.speedscope.json"
    gs("export", "--format", "speedscope", r.rec, "-o", out)
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, schema)
    frames = doc["shared"]["frames"]
    rate = r.report.get("stack_rate_hz")
    period = 1_000_000_000 // rate if rate else 1_000_000  # the default 1000 Hz when not said
    tids = {t["tid"] for t in r.report["threads"]}
    per_kind = collections.defaultdict(collections.Counter)
    for p in doc["profiles"]:
        assert p["type"] == "sampled" and p["unit"] == "nanoseconds"
        assert len(p["samples"]) == len(p["weights"]) and sum(p["weights"]) == p["endValue"]
        head, kind = p["name"].rsplit(": ", 1)
        assert kind in KINDS
        tid = int(head.split("(TID ")[1].split(",")[0])
        assert tid in tids
        for stack, w in zip(p["samples"], p["weights"]):
            assert all(0 <= i < len(frames) for i in stack)
            names = []
            for i in stack:
                f = frames[i]
                if i == len(frames) - 1:
                    names.append("[no Python frame]")
                elif "line" in f:
                    names.append(f"{f['name']} ({f['file']}:{f['line']})")
                else:
                    names.append(f"{f['name']} ({f['file']})")
            per_kind[kind][";".join(names)] += w
    assert per_kind["hold"], "no hold profile"
    if r.native:  # Python and native frames in one stack
        assert any("line" not in frames[i] for p in doc["profiles"] for st in p["samples"] for i in st[:-1])
    for kind in KINDS:
        want = folded(r.rec, kind)
        want = collections.Counter({k: v * period for k, v in want.items()})
        diff = {k: (per_kind[kind][k], want[k]) for k in set(want) | set(per_kind[kind]) if per_kind[kind][k] != want[k]}
        assert not diff, (kind, diff)
    # the target's functions are there, each in the profiles of its own thread
    for fn in ("alpha_spinner", "beta_spinner"):
        profs = [p for p in doc["profiles"] if any(frames[i]["name"] == fn for s in p["samples"] for i in s)]
        assert profs, fn
        assert len({p["name"].rsplit(": ", 1)[0] for p in profs}) == 1, (fn, [p["name"] for p in profs])


def columns(table, names):
    for n in names:
        assert n in table, n
        assert len(table[n]) == table["length"], n


def test_gecko_has_the_documented_fields_and_the_gil_states(run):
    d, r = run
    out = d / "profile.gecko.json"
    gs("export", "--format", "gecko", r.rec, "-o", out)
    doc = json.loads(out.read_text())
    meta = doc["meta"]
    for k in ("version", "interval", "startTime", "categories", "preprocessedProfileVersion", "product",
              "markerSchema"):
        assert k in meta, k
    assert meta["version"] == 32 and meta["preprocessedProfileVersion"] == 57
    cats = [c["name"] for c in meta["categories"]]
    strings = doc["shared"]["stringArray"]
    assert doc["libs"] == [] and doc["pages"] == []
    lifetime_ms = max(t["start_ns"] + t["lifetime_ns"] for t in r.report["threads"]) / 1e6
    report = {t["tid"]: t for t in r.report["threads"]}
    assert {t["tid"] for t in doc["threads"]} == set(report)
    seen = collections.defaultdict(set)
    for th in doc["threads"]:
        for k in ("name", "pid", "tid", "processType", "registerTime", "samples", "markers", "stackTable",
                  "frameTable", "funcTable", "resourceTable", "nativeSymbols"):
            assert k in th, k
        st, ft, fn = th["stackTable"], th["frameTable"], th["funcTable"]
        columns(st, ("frame", "category", "subcategory", "prefix"))
        columns(ft, ("address", "category", "subcategory", "func", "line", "inlineDepth", "nativeSymbol"))
        columns(fn, ("name", "isJS", "relevantForJS", "resource", "fileName", "lineNumber", "columnNumber"))
        columns(th["samples"], ("stack", "time"))
        columns(th["markers"], ("data", "name", "startTime", "endTime", "phase", "category"))
        for i, (f, p) in enumerate(zip(st["frame"], st["prefix"])):
            assert 0 <= f < ft["length"] and (p is None or 0 <= p < i)
        assert all(0 <= f < fn["length"] for f in ft["func"])
        assert all(0 <= s < len(strings) for s in fn["name"] + fn["fileName"])
        times = th["samples"]["time"]
        assert times == sorted(times) and all(0 <= t <= lifetime_ms + 1 for t in times)
        for s in th["samples"]["stack"]:
            while s is not None:
                seen[th["tid"]].add(strings[fn["name"][ft["func"][st["frame"][s]]]])
                s = st["prefix"][s]
        # GIL states: every marker an interval of the GIL category, named as the timelines name them
        m = th["markers"]
        held = waited = 0.0
        for name, s, e, ph, cat, data in zip(m["name"], m["startTime"], m["endTime"], m["phase"], m["category"],
                                             m["data"]):
            assert ph == 1 and cats[cat] == "GIL" and data["type"] == "GIL" and data["state"] == strings[name]
            assert 0 <= s < e <= lifetime_ms + 1
            if strings[name].startswith("holds GIL"):
                held += e - s
            else:
                assert strings[name] in ("S(GIL)", "R(GIL)", "waits GIL (on CPU)")
                waited += e - s
        t = report[th["tid"]]
        assert abs(held * 1e6 - t["gil_held_ns"]) < 1000, (th["tid"], held, t["gil_held_ns"])
        assert abs(waited * 1e6 - t["gil_wait_ns"]) < 1000, (th["tid"], waited, t["gil_wait_ns"])
    for fn in ("alpha_spinner", "beta_spinner"):
        owners = [tid for tid, names in seen.items() if fn in names]
        assert len(owners) == 1, (fn, owners)
    if r.native:
        assert any(c == cats.index("Native") for th in doc["threads"] for c in th["frameTable"]["category"])


def test_speedscope_opens_it(run):
    """speedscope's own app (from the npm package, offline) loads the file: its title bar names
    the first profile and counts them all, with no console error. Screenshot in the tmp dir."""
    if not os.access("/usr/bin/chromium", os.X_OK):
        pytest.skip("SKIPPED: chromium is not installed (apt-get install chromium)")
    node = shutil.which("node")
    if not node:
        pytest.skip("SKIPPED: node is not installed (apt-get install nodejs npm)")
    app = os.path.join(npm_module("speedscope@1"), "dist", "release", "index.html")
    playwright = npm_module("playwright-core@1")
    d, r = run
    out = d / "open.speedscope.json"
    gs("export", "--format", "speedscope", r.rec, "-o", out)
    doc = json.loads(out.read_text())
    p = subprocess.run([node, os.path.join(ROOT, "tests", "functional", "speedscope_open.js"), app, str(out),
                        str(d / "speedscope.png")], capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, PLAYWRIGHT_CORE=playwright))
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout)
    assert seen["errors"] == [], seen["errors"]
    assert f"{doc['profiles'][0]['name']} (1/{len(doc['profiles'])})" in seen["text"], seen["text"][:300]
