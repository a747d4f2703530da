"""record -e EVENT: perf's counters per thread split by GIL state, checked against what the kernel
counted for the thread itself (/proc/thread-self/stat); --sample-event EVENT: the Python stacks
at the event's occurrences (export --what EVENT); events this machine cannot count (no PMU in a
virtual machine) said in one line while the others are recorded."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import GILSCOPE, PYTHONS, record, target

PY = "/usr/bin/python3.11"  # Debian's static, stripped build
STATES = ("held", "wait", "no_gil", "other")
PMU = any(os.path.exists(f"/sys/bus/event_source/devices/{d}") for d in ("cpu", "cpu_core", "armv8_pmuv3_0"))
NO_PMU = "no hardware performance counters on this machine (no CPU PMU under /sys/bus/event_source/devices: " \
    "a virtual machine without a virtual PMU)"


def interpreters():
    out = []
    for name in ("debian-3.11-stripped", "pyenv-3.12-shared"):
        out.append(pytest.param(PYTHONS[name], id=name,
                                marks=pytest.mark.skipif(not os.access(PYTHONS[name], os.X_OK),
                                                         reason=f"{PYTHONS[name]} is not installed")))
    return out


def fact(run, role):
    return next(f for f in run.facts if f.get("role") == role)


def check_parts(counters):
    for name, c in counters.items():
        assert sum(c[s] for s in STATES) == c["total"], (name, c)


def folded(rec, *args):
    p = subprocess.run([GILSCOPE, "export", "--format", "folded", *args, str(rec)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    lines = [line.rsplit(" ", 1) for line in p.stdout.splitlines() if line.strip()]
    return [(stack, int(n)) for stack, n in lines]


def weight(lines, function):
    return sum(n for stack, n in lines if f"{function} (" in stack.rsplit(";", 1)[-1])


@pytest.mark.parametrize("python", interpreters())
def test_page_faults_match_the_kernel_and_are_held(tmp_path, python):
    run = record(tmp_path, [python, target("page_toucher.py"), "30000"],
                 args=("-e", "page-faults,minor-faults,major-faults,context-switches"))
    assert run.proc.returncode == 0, run.proc.stderr
    tf, sf = fact(run, "toucher"), fact(run, "sleeper")
    toucher, sleeper = run.thread(tf["tid"]), run.thread(sf["tid"])
    c = toucher["counters"]
    check_parts(c)
    check_parts(sleeper["counters"])
    kernel = tf["minflt"] + tf["majflt"]
    assert kernel >= 30000
    ours = c["minor-faults"]["total"] + c["major-faults"]["total"]
    # the thread reads its figures a little before it ends: a few faults after that are ours only
    assert abs(ours - kernel) <= 0.01 * kernel, (ours, kernel)
    assert abs(c["page-faults"]["total"] - kernel) <= 0.01 * kernel, (c["page-faults"], kernel)
    assert c["page-faults"]["held"] >= 0.95 * c["page-faults"]["total"], c["page-faults"]
    # the sleeper faults a little (its stack, its start), the toucher's faults are not its
    assert sleeper["counters"]["page-faults"]["total"] < 0.01 * kernel
    proc = next(p for p in run.report["processes"] if p["pid"] == toucher["pid"])
    check_parts(proc["counters"])
    assert proc["counters"]["page-faults"]["total"] >= c["page-faults"]["total"]
    assert proc["ipc"] is None  # cycles and instructions were not asked for
    events = {e["name"]: e for e in run.report["counter_events"]}
    assert events["page-faults"]["recorded"] and events["page-faults"]["period"] == 1
    assert events["page-faults"]["attribution"] == "every occurrence, state at that instant"


def test_text_report_has_the_counters_section(tmp_path):
    run = record(tmp_path, [PY, target("page_toucher.py"), "5000"], args=("-e", "minor-faults"))
    rep = subprocess.run([GILSCOPE, "report", str(run.rec)], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert "Counters by GIL state" in rep.stdout
    tid = str(fact(run, "toucher")["tid"])
    row = next(line.split() for line in rep.stdout.splitlines() if line.split()[:1] == [tid] and
               "minor-faults" in line)
    total, held, wait, nogil, other = (int(x) for x in row[-5:])
    assert total == held + wait + nogil + other and held >= 0.95 * total and total >= 5000


def test_page_fault_stacks_name_the_function(tmp_path):
    run = record(tmp_path, [PY, target("page_toucher.py"), "30000"],
                 args=("-e", "page-faults", "--sample-event", "page-faults/64"))
    assert run.proc.returncode == 0, run.proc.stderr
    lines = folded(run.rec, "--what", "page-faults")
    total = sum(n for _, n in lines)
    assert weight(lines, "touch_pages") >= 0.8 * total, lines[:5]
    held = folded(run.rec, "--what", "page-faults", "--state", "held")
    assert weight(held, "touch_pages") >= 0.95 * weight(lines, "touch_pages")
    assert not weight(folded(run.rec, "--what", "page-faults", "--state", "wait"), "touch_pages")
    events = {e["name"]: e for e in run.report["counter_events"] if e["use"] == "stacks"}
    assert events["page-faults"]["period"] == 64 and events["page-faults"]["stack_samples"] >= 30000 // 64 * 0.9
    # the counting event beside it is not disturbed by the sampled one
    toucher = run.thread(fact(run, "toucher")["tid"])
    assert toucher["counters"]["page-faults"]["total"] >= 30000


def test_alternating_functions_are_told_apart(tmp_path):
    # no timer samples at all (-r 0): the stacks come from the events alone
    run = record(tmp_path, [PY, target("fault_alternation.py"), "40", "2500", "100000"],
                 args=("-r", "0", "--sample-event", "page-faults/25"))
    assert run.proc.returncode == 0, run.proc.stderr
    lines = folded(run.rec, "--what", "page-faults")
    faulty, quiet = weight(lines, "faulty"), weight(lines, "quiet")
    # the stack is read right after the fault: only the faults at the end of a faulty() round
    # can be read once quiet() runs
    assert faulty >= 40 * 2500 * 0.8, (faulty, quiet)
    assert quiet <= 0.1 * faulty, (faulty, quiet)


def test_cycles_without_pmu_is_one_sentence_and_the_rest_is_recorded(tmp_path):
    if PMU:
        pytest.skip("SKIPPED: this machine has hardware performance counters, so cycles is not refused")
    run = record(tmp_path, [PY, "-c", "import mmap, sys\nm = mmap.mmap(-1, 4096 * 2000)\n"
                            "for i in range(0, 4096 * 2000, 4096): m[i] = 1\nsys.exit(3)"],
                 args=("-e", "cycles,page-faults,no-such-event"))
    assert run.proc.returncode == 3  # the command's status
    said = [line for line in run.proc.stderr.splitlines() if "event cycles" in line]
    assert len(said) == 1, run.proc.stderr
    assert "event cycles cannot be counted: this machine exposes no hardware performance counters" in said[0]
    assert "virtual machine" in said[0] and "the other events are" in said[0]
    unknown = [line for line in run.proc.stderr.splitlines() if "no-such-event" in line]
    assert len(unknown) == 1 and "is unknown" in unknown[0]
    events = {e["name"]: e for e in run.report["counter_events"]}
    assert not events["cycles"]["recorded"] and "no hardware performance counters" in events["cycles"]["why_not"]
    assert events["cycles"]["hardware"]
    assert not events["no-such-event"]["recorded"]
    main = next(t for t in run.report["threads"] if t["tid"] == t["pid"] == run.report["target_pid"])
    assert "cycles" not in main["counters"]
    assert main["counters"]["page-faults"]["total"] >= 2000
    rep = subprocess.run([GILSCOPE, "report", str(run.rec)], capture_output=True, text=True, timeout=120)
    assert "not recorded: event cycles cannot be counted" in rep.stdout


@pytest.mark.parametrize("events", ["cycles,instructions", "cache-misses,L1-dcache-load-misses,branch-misses"])
def test_hardware_events(tmp_path, events):
    if not PMU:
        pytest.skip(f"SKIPPED: {NO_PMU}")
    run = record(tmp_path, [PY, target("page_toucher.py"), "5000"], args=("-e", events))
    assert run.proc.returncode == 0, run.proc.stderr
    toucher = run.thread(fact(run, "toucher")["tid"])
    check_parts(toucher["counters"])
    for name in events.split(","):
        assert toucher["counters"][name]["total"] > 0
    if "cycles" in events:
        assert toucher["ipc"]["held"] is not None and toucher["ipc"]["held"] > 0


def test_malformed_event_list_is_a_usage_error(tmp_path):
    for bad in ("page-faults,", "page-faults/0", "page-faults/x", ""):
        p = subprocess.run([GILSCOPE, "record", "-o", str(tmp_path / "x.rec"), "-e", bad, "--", PY, "-c", "pass"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "invalid" in p.stderr, (bad, p.stderr)


def test_export_of_an_event_without_stacks_says_so(tmp_path):
    run = record(tmp_path, [PY, "-c", "pass"], args=("-e", "page-faults"))
    p = subprocess.run([GILSCOPE, "export", "--format", "folded", "--what", "page-faults", str(run.rec)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "--sample-event page-faults" in p.stderr
    p = subprocess.run([GILSCOPE, "export", "--format", "folded", "--what", "hold", "--state", "held", str(run.rec)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2


def test_counter_tracks_in_trace_json_and_perfetto(tmp_path):
    run = record(tmp_path, [PY, target("page_toucher.py"), "5000"], args=("-e", "minor-faults"))
    tid = fact(run, "toucher")["tid"]
    total = run.thread(tid)["counters"]["minor-faults"]["total"]
    out = tmp_path / "t.json"
    p = subprocess.run([GILSCOPE, "export", "--format", "trace-json", str(run.rec), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with open(out) as f:
        doc = json.load(f)
    ev = doc["traceEvents"] if isinstance(doc, dict) else doc
    name = f"minor-faults (TID {tid})"
    points = [e for e in ev if e.get("ph") == "C" and e["name"] == name]
    values = [e["args"][name] for e in points]
    assert len(points) >= 3 and values == sorted(values)  # a running total, a point a millisecond at most
    assert total - 5000 <= values[-1] <= total  # the last point is within a millisecond of the end
    # the HTML page's timeline: the same running totals, as lines over the thread's track
    html = tmp_path / "t.html"
    p = subprocess.run([GILSCOPE, "export", "--format", "html", str(run.rec), "-o", str(html)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    page = html.read_text()
    data = json.loads(page.split('<script type="application/json" id="gs-data">', 1)[1].split("</script>", 1)[0])
    assert data["counters"]["names"] == ["minor-faults"]
    pts = data["counters"]["points"]
    index = next(i for i, t in enumerate(data["threads"]) if t["tid"] == tid)
    mine = [pts[i + 3] for i in range(0, len(pts), 4) if pts[i] == index and pts[i + 1] == 0]
    assert mine == values, (mine[:5], values[:5])
    protoc = shutil.which("protoc")
    if not protoc:
        pytest.skip("protoc is not installed (apt-get install protobuf-compiler)")
    pb = tmp_path / "t.pftrace"
    p = subprocess.run([GILSCOPE, "export", "--format", "perfetto", str(run.rec), "-o", str(pb)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with open(pb, "rb") as f:
        dec = subprocess.run([protoc, f"--proto_path={os.path.join(os.path.dirname(__file__), 'proto')}",
                              "--decode=perfetto.protos.Trace", "perfetto_subset.proto"], stdin=f,
                             capture_output=True, text=True)
    assert dec.returncode == 0, dec.stderr
    assert f'name: "{name}"' in dec.stdout
    assert dec.stdout.count("TYPE_COUNTER") >= len(points)
