"""Known answers: a hand-written recording (recwriter.py) whose every figure is worked out by hand
below, run through `report --json`, `report`, `blame` and every `export` format.

The run (times in microseconds from the start; process 100, GIL events as the probes give them):
  main 100 ("python3")  holds 0-50, sleeps 50-895, runnable 895-900, holds 900-990, runs 990-1000
  101 ("hogger")        created at 10, runs 10-20, waits 20-60, holds 60-460 (a forced drop:
                        102 asked at 400), runs 460-480, waits 480-520, holds 520-820, runs 820-830
  102 ("waiter")        created at 10, runs 10-30, waits 30-470 (asleep 40-395 and 402-465,
                        woken 395-398 and 465-468, on CPU the rest; asks for a drop at 400),
                        holds 470-520, runs 520-530, waits 530-825 on CPU, holds 825-850, runs 850-860
The durations are all different, so that swapping held and wait, a thread and another, or the
holder and the waiter gives a different answer. Stack samples (stack 1: hog <- Thread.run,
stack 2: waiter_fn <- Thread.run, stack 3: main_loop): main at 25 (holds, 101 waits) and 500
(asleep); 101 at 100, 200 (holds, 102 waits) and 470 (runs without the GIL); 102 at 100, 300
(waits) and 500 (holds, 101 waits)."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import GILSCOPE
from known_run import HOG, MAIN, P, WAITER, scenario
import recwriter as rw

US = 1000


# Each thread's figures, in microseconds (counts as they are).
THREADS = {
    MAIN: dict(start_ns=0, lifetime_ns=1000, gil_held_ns=140, gil_held_off_cpu_ns=0, gil_wait_ns=0,
               gil_wait_sleeping_ns=0, gil_wait_runnable_ns=0, gil_wait_on_cpu_ns=0, running_no_gil_ns=10,
               sleeping_ns=845, uninterruptible_ns=0, runnable_ns=5, unknown_ns=0, acquisitions=2, releases=2,
               forced_drops=0, voluntary_releases=2, drop_requests=0, longest_hold_ns=90, longest_wait_ns=0,
               drop_requests_received=0, drop_request_latency_avg_ns=0, drop_request_latency_max_ns=0),
    HOG: dict(start_ns=10, lifetime_ns=820, gil_held_ns=700, gil_held_off_cpu_ns=0, gil_wait_ns=80,
              gil_wait_sleeping_ns=0, gil_wait_runnable_ns=0, gil_wait_on_cpu_ns=80, running_no_gil_ns=40,
              sleeping_ns=0, uninterruptible_ns=0, runnable_ns=0, unknown_ns=0, acquisitions=2, releases=2,
              forced_drops=1, voluntary_releases=1, drop_requests=0, longest_hold_ns=400, longest_wait_ns=40,
              drop_requests_received=1, drop_request_latency_avg_ns=60, drop_request_latency_max_ns=60),
    WAITER: dict(start_ns=10, lifetime_ns=850, gil_held_ns=75, gil_held_off_cpu_ns=0, gil_wait_ns=735,
                 gil_wait_sleeping_ns=355 + 63, gil_wait_runnable_ns=3 + 3, gil_wait_on_cpu_ns=10 + 4 + 2 + 295,
                 running_no_gil_ns=40, sleeping_ns=0, uninterruptible_ns=0, runnable_ns=0, unknown_ns=0,
                 acquisitions=2, releases=2, forced_drops=0, voluntary_releases=2, drop_requests=1,
                 longest_hold_ns=50, longest_wait_ns=440, drop_requests_received=0, drop_request_latency_avg_ns=0,
                 drop_request_latency_max_ns=0),
}
COUNTS = {"acquisitions", "releases", "forced_drops", "voluntary_releases", "drop_requests", "drop_requests_received"}
# Who held the GIL while each thread waited (holder 0: free, being handed over), microseconds.
BLAME = {MAIN: {}, HOG: {MAIN: 30, 0: 10, WAITER: 40}, WAITER: {MAIN: 20, 0: 10 + 10 + 5, HOG: 400 + 290}}
# Each thread's life, slice by slice (trace-json and Perfetto names), microseconds.
SLICES = {
    MAIN: [("holds GIL", 0, 50), ("S", 50, 895), ("R", 895, 900), ("holds GIL", 900, 990),
           ("running (no GIL)", 990, 1000)],
    HOG: [("running (no GIL)", 10, 20), ("waits GIL (on CPU)", 20, 60), ("holds GIL", 60, 460),
          ("running (no GIL)", 460, 480), ("waits GIL (on CPU)", 480, 520), ("holds GIL", 520, 820),
          ("running (no GIL)", 820, 830)],
    WAITER: [("running (no GIL)", 10, 30), ("waits GIL (on CPU)", 30, 40), ("S(GIL)", 40, 395), ("R(GIL)", 395, 398),
             ("waits GIL (on CPU)", 398, 402), ("S(GIL)", 402, 465), ("R(GIL)", 465, 468),
             ("waits GIL (on CPU)", 468, 470), ("holds GIL", 470, 520), ("running (no GIL)", 520, 530),
             ("waits GIL (on CPU)", 530, 825), ("holds GIL", 825, 850), ("running (no GIL)", 850, 860)],
}
# Hand-overs: (releasing thread, release time) -> (next holder, its take)
ARROWS = [((MAIN, 50), (HOG, 60)), ((HOG, 460), (WAITER, 470)), ((WAITER, 520), (HOG, 520)),
          ((HOG, 820), (WAITER, 825)), ((WAITER, 850), (MAIN, 900))]


def by_time(arrow):
    return arrow[0][1], arrow[1][1]


HOG_STACK = "Thread.run (threading.py:900);hog (known.py:20)"
WAITER_STACK = "Thread.run (threading.py:900);waiter_fn (known.py:30)"
MAIN_STACK = "main_loop (known.py:10)"
FOLDED = {
    "hold": {MAIN_STACK: 1, HOG_STACK: 2, WAITER_STACK: 1},
    "wait": {WAITER_STACK: 2},
    "cpu": {HOG_STACK: 1},
    "offcpu": {MAIN_STACK: 1},
    "offgil": {MAIN_STACK: 1, HOG_STACK: 1},
    "blocking": {MAIN_STACK: 1, HOG_STACK: 2, WAITER_STACK: 1},
}
LABELS = {MAIN: "python3", HOG: "hogger", WAITER: "waiter"}


@pytest.fixture(scope="module", params=[2, 1], ids=["format2", "format1"])
def rec(tmp_path_factory, request):
    """The run in the format gilscope writes, and in format 1 (older recordings read the same)."""
    return scenario(version=request.param).write(tmp_path_factory.mktemp("known") / "known.rec")


def gs(*args):
    proc = subprocess.run([GILSCOPE, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def report_json(rec):
    return json.loads(gs("report", "--json", rec))


def merged(slices):
    """Consecutive slices of the same kind as one (exporters may split them)."""
    out = []
    for name, start, end in sorted(slices, key=lambda s: s[1]):
        if out and out[-1][0] == name and out[-1][2] == start:
            out[-1] = (name, out[-1][1], end)
        else:
            out.append((name, start, end))
    return out


def test_report_json_thread_figures(rec):
    """Held and wait per thread, each state's time, the counters: exactly as worked out."""
    rep = report_json(rec)
    threads = {t["tid"]: t for t in rep["threads"]}
    assert sorted(threads) == sorted(THREADS)
    for tid, want in THREADS.items():
        t = threads[tid]
        got = {k: t[k] for k in want}
        assert got == {k: v if k in COUNTS else v * US for k, v in want.items()}, f"thread {tid}"
        assert t["label"] == LABELS[tid] and t["is_main"] == (tid == MAIN) and t["exited"]
        parts = ("gil_held_ns", "gil_wait_ns", "running_no_gil_ns", "sleeping_ns", "runnable_ns", "unknown_ns")
        assert sum(t[k] for k in parts) == t["lifetime_ns"], f"thread {tid}: its life is not partitioned"


def test_report_json_process_and_run(rec):
    rep = report_json(rec)
    assert rep["python"]["version"] == "3.11.7"
    assert (rep["target_pid"], rep["duration_ns"], rep["lost_events"], rep["complete"], rep["exit_status"]) == \
        (P, 1000 * US, 0, True, 0)
    assert rep["stack_samples"] == 8 and rep["gil_events_while_off_cpu"] == 0
    (proc,) = rep["processes"]
    # held: 50 + 400 + 50 + 300 + 25 + 90; someone waiting: 20-470, 480-520, 530-825
    assert (proc["gil_held_ns"], proc["gil_contended_ns"], proc["acquisitions"], proc["forced_drops"],
            proc["drop_requests"], proc["drop_request_latency_max_ns"]) == \
        (915 * US, (450 + 40 + 295) * US, 6, 1, 1, 60 * US)


def test_report_json_blame_and_wait_sites(rec):
    """waited_while_held_by names the holder in the waiter's entry; wait_sites add up to gil_wait_ns
    exactly (the README's promise), the waits no sample fell in included."""
    rep = report_json(rec)
    for t in rep["threads"]:
        got = {b["holder_tid"]: b["ns"] for b in t["waited_while_held_by"]}
        assert got == {h: v * US for h, v in BLAME[t["tid"]].items()}, f"blame of thread {t['tid']}"
        assert sum(w["ns"] for w in t["wait_sites"]) == t["gil_wait_ns"], f"wait_sites of thread {t['tid']}"
    waiter = next(t for t in rep["threads"] if t["tid"] == WAITER)
    sites = {(w["ns"], w["waits"]): w["stack"] and [f["function"] for f in w["stack"]] for w in waiter["wait_sites"]}
    assert sites == {(440 * US, 1): ["waiter_fn", "Thread.run"], (295 * US, 1): None}
    by = {b["holder_tid"]: b for b in waiter["waited_while_held_by"]}
    assert [[f["function"] for f in s["stack"]] for s in by[HOG]["holder_stacks"]] == [["hog", "Thread.run"]]
    assert by[HOG]["holder_samples"] == 2
    holds = [(h["tid"], h["start_ns"] // US, h["ns"] // US, h["max_waiters"], h["waited_ns"] // US)
             for h in rep["longest_holds"]]
    assert holds[:2] == [(HOG, 60, 400, 1, 400), (HOG, 520, 300, 1, 290)]
    assert [f["function"] for f in rep["longest_holds"][0]["stack"]] == ["hog", "Thread.run"]


def table_rows(text):
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^[* ]\s+(\d+)\s+(\S+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+"
                     r"(\d+)\s+(\d+)\s+(\d+)\s", line)
        if m:
            rows[int(m.group(1))] = (m.group(2), *map(float, m.group(4, 5, 6, 7, 8)), *map(int, m.group(9, 10, 11)))
    return rows


def test_report_text_table(rec):
    """The table's percentages of each lifetime, in the right columns."""
    out = gs("report", rec)
    rows = table_rows(out)
    pct = lambda tid, k: round(100.0 * THREADS[tid][k] / THREADS[tid]["lifetime_ns"], 1)  # noqa: E731
    for tid in THREADS:
        t = THREADS[tid]
        assert rows[tid] == (LABELS[tid], pct(tid, "gil_held_ns"), pct(tid, "gil_wait_ns"),
                             pct(tid, "running_no_gil_ns"), pct(tid, "sleeping_ns"), pct(tid, "runnable_ns"),
                             t["acquisitions"], t["forced_drops"], t["voluntary_releases"]), f"row of {tid}"
    assert "GIL held 91.5% of 1.0ms" in out and "contended 78.5%" in out
    assert re.search(r"^lost events: 0\b", out, re.M)


def blame_sections(text):
    """{waiter tid: [(holder tid or 0, percent, ns text)]} from `gilscope blame`."""
    sections, cur = {}, None
    for line in text.splitlines():
        if m := re.match(r"^  TID (\d+) \(.*\) waited (\S+):", line):
            cur = sections.setdefault(int(m.group(1)), [])
        elif line.startswith("Longest holds"):
            cur = None
        elif cur is not None and (m := re.match(r"^\s+([\d.]+)%\s+(\S+)\s+while (TID (\d+)|it was free)", line)):
            cur.append((int(m.group(4) or 0), float(m.group(1)), m.group(2)))
    return sections


def test_blame_names_the_holder_in_the_waiters_section(rec):
    out = gs("blame", rec)
    sec = blame_sections(out)
    assert sorted(sec) == [HOG, WAITER], "only the threads that waited have a section"
    assert sec[WAITER] == [(HOG, 93.9, "690.0us"), (0, 3.4, "25.0us"), (MAIN, 2.7, "20.0us")]
    assert sec[HOG] == [(WAITER, 50.0, "40.0us"), (MAIN, 37.5, "30.0us"), (0, 12.5, "10.0us")]
    # the holder's stacks under the holder, in the waiter's section
    waiter_part = out.split("TID 102 (waiter) waited")[1].split("Longest holds")[0]
    assert re.search(r"while TID 101 \(hogger\) held it\n\s+100% in hog \(known.py:20\) <- Thread.run", waiter_part)


def folded(rec, what):
    out = {}
    for line in gs("export", "--format", "folded", "--what", what, rec).splitlines():
        stack, n = line.rsplit(" ", 1)
        out[stack] = out.get(stack, 0) + int(n)
    return out


@pytest.mark.parametrize("what", sorted(FOLDED))
def test_folded_stacks_by_kind(rec, what):
    assert folded(rec, what) == FOLDED[what]


def trace_json(rec, tmp_path):
    out = tmp_path / "t.json"
    gs("export", "--format", "trace-json", rec, "-o", out)
    return json.loads(out.read_text())


def rel_us(ts):
    return round(ts - rw.START_NS / 1000, 3)


def test_trace_json_slices_and_arrows(rec, tmp_path):
    """Slices cover each thread's whole life in order; each hand-over arrow starts on the releasing
    thread at its release and ends on the next holder at its take."""
    tr = trace_json(rec, tmp_path)
    ev = tr["traceEvents"]
    slices = {}
    for e in ev:
        if e["ph"] == "X":
            slices.setdefault(e["tid"], []).append((e["name"], rel_us(e["ts"]), rel_us(e["ts"] + e["dur"])))
    assert {tid: merged(s) for tid, s in slices.items()} == SLICES
    starts = {e["id"]: (e["tid"], rel_us(e["ts"])) for e in ev if e["ph"] == "s"}
    ends = {e["id"]: (e["tid"], rel_us(e["ts"])) for e in ev if e["ph"] == "f"}
    assert sorted(starts) == sorted(ends)
    assert sorted(((starts[i], ends[i]) for i in starts), key=by_time) == ARROWS
    assert [(e["tid"], rel_us(e["ts"])) for e in ev if e["ph"] == "i" and e["name"] == "switch request"] == \
        [(WAITER, 400)]
    waiters = [(rel_us(e["ts"]), e["args"]["waiting"]) for e in ev if e["ph"] == "C"]
    assert waiters == [(0, 1), (0, 0), (20, 1), (30, 2), (60, 1), (470, 0), (480, 1), (520, 0), (530, 1),
                       (825, 0), (900, 1), (900, 0)]
    names = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {MAIN: "* python3 100", HOG: "hogger 101", WAITER: "waiter 102"}
    assert tr["gilscope"]["lost_events"] == 0 and tr["gilscope"]["complete"] is True


def decode_perfetto(rec, tmp_path):
    protoc = shutil.which("protoc")
    if not protoc:
        pytest.skip("protoc is not installed (apt-get install protobuf-compiler)")
    pb = tmp_path / "t.pftrace"
    gs("export", "--format", "perfetto", rec, "-o", pb)
    protodir = os.path.join(os.path.dirname(__file__), "proto")
    with open(pb, "rb") as f:
        dec = subprocess.run([protoc, f"--proto_path={protodir}", "--decode=perfetto.protos.Trace",
                              "perfetto_subset.proto"], stdin=f, capture_output=True, text=True)
    assert dec.returncode == 0, dec.stderr
    packets, cur = [], None
    for line in dec.stdout.splitlines():
        line = line.strip()
        if line == "packet {":
            cur = {}
            packets.append(cur)
        elif m := re.match(r'(\w+): "?([^"]*)"?$', line):
            cur.setdefault(m.group(1), m.group(2))
    return packets


def test_perfetto_slices_and_flows(rec, tmp_path):
    packets = decode_perfetto(rec, tmp_path)
    tid_of = {p["uuid"]: int(p["tid"]) for p in packets if "tid" in p}
    slices, open_at, flow_start, flow_end = {}, {}, {}, {}
    for p in packets:
        typ, track = p.get("type"), p.get("track_uuid")
        t = int(p.get("timestamp", 0)) - rw.START_NS
        if typ == "TYPE_SLICE_BEGIN":
            open_at[track] = (p["name"], t)
        elif typ == "TYPE_SLICE_END":
            name, start = open_at.pop(track)
            slices.setdefault(tid_of[track], []).append((name, start / US, t / US))
        elif typ == "TYPE_INSTANT" and "flow_ids" in p:
            flow_start[p["flow_ids"]] = (tid_of[track], t // US)
        elif typ == "TYPE_INSTANT" and "terminating_flow_ids" in p:
            flow_end[p["terminating_flow_ids"]] = (tid_of[track], t // US)
    assert not open_at
    assert {tid: merged(s) for tid, s in slices.items()} == SLICES
    assert sorted(((flow_start[i], flow_end[i]) for i in flow_end), key=by_time) == ARROWS
    # main's last release hands the GIL to nobody
    assert set(flow_start) - set(flow_end) and all(flow_start[i] == (MAIN, 990) for i in set(flow_start) - set(flow_end))


def html_data(page):
    """The JSON data block of an HTML page (html_page.h)."""
    return json.loads(re.search(r'<script type="application/json" id="gs-data">(.*?)</script>', page, re.S).group(1))


def test_html_embedded_data(rec, tmp_path):
    """The page's slice array, its thread figures and its blame, from its JSON data block."""
    out = tmp_path / "t.html"
    gs("export", "--format", "html", rec, "-o", out)
    data = html_data(out.read_text())
    threads, kinds, nums = data["threads"], data["states"]["desc"], data["slices"]
    short = {"holds GIL": "holds GIL", "S(GIL)": "S(GIL)", "R(GIL)": "R(GIL)", "waits GIL (on CPU)": "waiting for the GIL",
             "running (no GIL)": "running without the GIL", "S": "S: sleeping", "R": "R: runnable"}
    slices = {}
    for i in range(0, len(nums), 4):
        ti, start, dur, kind = nums[i:i + 4]
        tid = threads[int(ti)]["tid"]
        slices.setdefault(tid, []).append((kinds[int(kind)], start, start + dur))
    want = {tid: [(next(k for k in kinds if k.startswith(short[n])), s, e) for n, s, e in v]
            for tid, v in SLICES.items()}
    assert {tid: merged(s) for tid, s in slices.items()} == want
    # the table's figures (st: ns per slice kind) are the report's
    rep = {t["tid"]: t for t in report_json(rec)["threads"]}
    for t in threads:
        r = rep[t["tid"]]
        assert t["st"][0] + t["st"][1] == r["gil_held_ns"] and t["st"][1] == r["gil_held_off_cpu_ns"]
        assert t["st"][2] + t["st"][3] + t["st"][4] == r["gil_wait_ns"]
        assert t["st"][5] == r["running_no_gil_ns"] and t["st"][6] + t["st"][7] == r["sleeping_ns"]
        assert t["st"][8] == r["runnable_ns"] and t["acq"] == r["acquisitions"]
    # blame: each waiter's holders and their times, as report --json has them
    blame = {threads[w["i"]]["tid"]: {(threads[h["i"]]["tid"] if h["i"] >= 0 else 0, h["ns"]) for h in w["h"]}
             for w in data["blame"]}
    assert blame == {tid: {(b["holder_tid"], b["ns"]) for b in r["waited_while_held_by"]}
                     for tid, r in rep.items() if r["waited_while_held_by"]}
    assert data["lost"] == 0 and data["complete"] is True


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    return scenario(lost=1234).write(tmp_path_factory.mktemp("lossy") / "lossy.rec")


def test_lost_events_reach_every_output(lossy, tmp_path):
    """A LOST record (1234 events on CPU 1) and the END record's total: the count is in the JSON,
    the text report, the trace metadata and the HTML page."""
    assert report_json(lossy)["lost_events"] == 1234
    assert re.search(r"^lost events: 1234\b", gs("report", lossy), re.M)
    assert trace_json(lossy, tmp_path)["gilscope"]["lost_events"] == 1234
    out = tmp_path / "l.html"
    gs("export", "--format", "html", lossy, "-o", out)
    assert html_data(out.read_text())["lost"] == 1234  # the page shows "lost events: 1234" from it


def test_lost_events_in_blame(lossy):
    """blame's figures are as incomplete as the report's: it says so (STYLE.md: counts of lost data
    travel into every output)."""
    assert re.search(r"^lost events: 1234; threads alive when events were lost", gs("blame", lossy), re.M)


def test_lost_events_mark_the_threads_they_touch(lossy, tmp_path):
    """Every thread alive when events were lost is marked (a ring does not say whose events it
    dropped); a run without losses marks none."""
    rep = report_json(lossy)
    for t in rep["threads"]:  # all three threads were alive at 70 us, when the events were lost
        assert t["lost_events_while_alive"] == 1234, t
    text = gs("report", lossy)
    assert re.search(rf"^threads alive when events were lost .*: TID {MAIN} \(python3\), TID {HOG} \(hogger\), "
                     rf"TID {WAITER} \(waiter\)$", text, re.M), text
    clean = scenario().write(tmp_path / "clean.rec")
    assert all(t["lost_events_while_alive"] == 0 for t in report_json(clean)["threads"])
    assert "threads alive when events were lost" not in gs("report", clean) + gs("blame", clean)


@pytest.mark.parametrize("version,told,sentence,shown", [
    (2, 1, "inline probes", True),
    (2, 0, "inline probes", False),  # the flag decides in format 2, whatever the sentence
    (2, 0, "inline probes, hardware watchpoint on gil_drop_request", False),
    (1, None, "inline probes, hardware watchpoint on gil_drop_request", True),
    (1, None, "inline probes; forced drops not told apart in this version", False),  # format 1: the sentence
])
def test_forced_drops_shown_only_when_told_apart(tmp_path, version, told, sentence, shown):
    """The summary claims forced drops only where a switch-request watchpoint told them apart."""
    r = rw.Recording(version=version).launch(P)
    r.comm(0, P, MAIN, "python3", by_exec=True)
    r.meta(P, "python.version", "3.13.5", 0)
    if told is not None:
        r.meta(P, "python.forced_drops_told_apart", told, 0)
    r.meta(P, "mechanism", sentence, 0)
    r.switch_in(0, P, MAIN).wait(0, MAIN).take(0, MAIN).release(50, MAIN)
    r.exit(100, P, MAIN).proc_exit(100, P, 0).end(100)
    path = tmp_path / "drops.rec"
    r.write(str(path))
    out = gs("report", str(path))
    line = next(x for x in out.splitlines() if "acquisitions" in x)
    assert ("forced drops" in line) == shown, line
