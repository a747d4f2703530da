"""Names from a hostile traced program reach every output as data, never as markup or terminal
control sequences (SECURITY.md: the recorded program may be hostile). The target names its
threads with an ANSI colour sequence and a right-to-left override, and its functions
`</script><img src=x onerror=alert(1)>` and one holding an OSC sequence (which sets a terminal's
title); gilscope records it, then the record summary, report, blame and folded output must hold
no raw control or bidi character, and the HTML page and flame graph must hold the names as text
only."""
import html.parser
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import GILSCOPE, PYTHONS

EVIL = "</script><img src=x onerror=alert(1)>"
OSC = "\x1b]0;owned\x07body"
THREAD = "\x1b[31m\u202eevil"

TARGET = r'''
import ctypes, threading, types
EVIL, OSC, THREAD = %r, %r, %r

def spin(n):
    x = 0
    for i in range(n):
        x += i
    return x

def named(f, name):
    code = f.__code__.replace(co_name=name)
    if hasattr(code, "co_qualname"):
        code = code.replace(co_qualname=name)
    return types.FunctionType(code, globals(), name)

evil = named(spin, EVIL)

def body():
    ctypes.CDLL(None).prctl(15, THREAD.encode(), 0, 0, 0)  # PR_SET_NAME: the OS thread's comm
    evil(3_000_000)

body = named(body, OSC)
# two threads named THREAD; a third keeps its name, so its label is the function it runs (3.11)
# or "Thread-3 (</scr" (3.14+ names OS threads after Python threads)
ts = [threading.Thread(target=body, name=THREAD) for _ in range(2)] + [threading.Thread(target=evil, args=(1_000_000,))]
for t in ts:
    t.start()
for t in ts:
    t.join()
''' % (EVIL, OSC, THREAD)

# bytes no terminal output may hold: C0 but newline, DEL, C1 (as UTF-8), bidi overrides/isolates
RAW = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


@pytest.fixture(scope="module", params=["pyenv-3.11.7-shared", "debian-3.14-stripped"])
def hostile(request, tmp_path_factory):
    python = PYTHONS[request.param]
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not installed on this machine")
    d = tmp_path_factory.mktemp("hostile")
    (d / "hostile.py").write_text(TARGET)
    rec = d / "run.rec"
    proc = subprocess.run([GILSCOPE, "record", "-o", str(rec), "--", python, str(d / "hostile.py")],
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return d, rec, proc.stderr


def gs(*args):
    proc = subprocess.run([GILSCOPE, *map(str, args)], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def assert_terminal_safe(out):
    bad = RAW.search(out)
    assert not bad, f"raw {bad.group()!r} at {bad.start()}: {out[max(0, bad.start() - 80):bad.end() + 80]!r}"


def test_record_summary_report_and_blame_escape_names(hostile):
    _, rec, summary = hostile
    report, blame = gs("report", rec), gs("blame", rec)
    for out in (summary, report, blame):
        assert_terminal_safe(out)
        assert rb"\x1b[31m\u202eevil" in out  # the thread's name, visibly escaped
    # the stacks show both functions, the OSC one made visible; < and > mean nothing to a terminal
    assert EVIL.encode() in blame and rb"\x1b]0;owned\x07body" in blame


def test_json_report_keeps_the_names_exactly(hostile):
    _, rec, _ = hostile
    doc = json.loads(gs("report", "--json", rec))
    assert THREAD in {t["name"] for t in doc["threads"]} | {t["label"] for t in doc["threads"]}
    functions = {f["function"] for t in doc["threads"] for w in t["wait_sites"] for f in (w["stack"] or [])}
    assert EVIL in functions and OSC in functions


def test_folded_escapes_names(hostile):
    _, rec, _ = hostile
    out = gs("export", "--format", "folded", "--what", "hold", rec)
    assert_terminal_safe(out)
    # the ";" of the OSC sequence becomes "," as every ";" in a folded frame name
    assert any(EVIL.encode() in line and rb"\x1b]0,owned\x07body" in line for line in out.splitlines())
    for line in out.splitlines():  # still "frames count" per line
        assert re.fullmatch(rb".+ \d+", line), line


class Tags(html.parser.HTMLParser):
    """Start tags, the text outside scripts, the scripts and the srcdoc documents of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.scripts, self.srcdocs, self.in_script = [], [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.in_script = tag == "script"
        self.srcdocs += [v for k, v in attrs if k == "srcdoc"]

    def handle_endtag(self, tag):
        self.in_script = False

    def handle_data(self, data):
        (self.scripts if self.in_script else self.text).append(data)


def check_svg(doc):
    """A flame graph: well-formed XML whose only elements are its own, the names its text."""
    root = ET.fromstring(doc)
    ns = "{http://www.w3.org/2000/svg}"
    kinds = {el.tag.replace(ns, "") for el in root.iter()}
    assert kinds <= {"svg", "style", "rect", "text", "g", "title", "script"}, kinds
    assert len(root.findall(f"{ns}script")) == 1
    return [t.text or "" for t in root.iter(f"{ns}title")]


def test_html_holds_the_names_as_text(hostile):
    d, rec, _ = hostile
    page = d / "page.html"
    gs("export", "--format", "html", rec, "-o", page)
    raw = page.read_bytes()
    p = Tags()
    p.feed(raw.decode())
    # the page's own elements only: the JSON data block and the page's script, no img, no iframe
    assert "img" not in p.tags and "iframe" not in p.tags
    assert p.tags.count("script") == 2
    text = "".join(p.text)
    assert EVIL not in text  # the page's markup holds no name: the script inserts them as text
    # the data holds no "<": nothing in it can close the element or open a comment
    data_text = re.search(r'<script type="application/json" id="gs-data">(.*?)</script>', raw.decode(), re.S)
    assert data_text and "<" not in data_text.group(1)
    data = json.loads(data_text.group(1))
    # the thread names: controls and bidi made visible as in the summary, markup kept as text
    assert any("\\x1b[31m\\u202eevil" in t["name"] for t in data["threads"])
    assert any(f.startswith(EVIL + " (") for f in data["frames"])
    assert any(f.startswith("\\x1b]0;owned\\x07body (") for f in data["frames"])
    # the script sets text, never markup
    script = p.scripts[-1]
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script


def test_html_in_a_browser_makes_no_element_of_a_name(hostile):
    chromium = "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    d, rec, _ = hostile
    page = d / "browser.html"
    gs("export", "--format", "html", rec, "-o", page)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={d / 'chrome'}"]
    dom = subprocess.run([chromium, *flags, "--enable-logging=stderr", "--v=0", "--dump-dom", f"file://{page}"],
                         capture_output=True, text=True, timeout=120)
    assert 'id="tl"' in dom.stdout
    p = Tags()
    p.feed(dom.stdout)  # the DOM the page's script leaves: still no element made of a name
    assert "img" not in p.tags and p.tags.count("script") == 2
    assert EVIL in "".join(p.text)
    errors = [l for l in dom.stderr.splitlines() if "CONSOLE" in l and ("Error" in l or "Uncaught" in l)]
    assert not errors, errors


def test_svg_holds_the_names_as_text(hostile):
    d, rec, _ = hostile
    svg = d / "hold.svg"
    gs("export", "--format", "svg", "--what", "hold", rec, "-o", svg)
    raw = svg.read_bytes()
    assert b"\x1b" not in raw and "\u202e".encode() not in raw
    titles = check_svg(raw)
    assert any(t.startswith(EVIL + " (") for t in titles)
    assert any(t.startswith("\\x1b]0;owned\\x07body (") for t in titles)


def test_trace_json_is_valid_with_the_names(hostile):
    d, rec, _ = hostile
    out = d / "trace.json"
    gs("export", "--format", "trace-json", rec, "-o", out)
    raw = out.read_bytes()
    assert b"\x1b" not in raw
    doc = json.loads(raw)
    names = [e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"]
    assert any(THREAD in n for n in names)
