"""The HTML page in a real browser (headless Chromium driven by npm's playwright-core, installed
outside the repository in GILSCOPE_NPM or /opt/gilscope-npm), on a recording of a program whose
thread and function names carry markup and script: a table row per thread, grouped by process,
sortable; a click on a row finds its timeline track; flame graphs as tall as their content with
the root in view, search and zoom; the names appear as text and nothing of them runs (no dialog,
no element made of a name, no request); no console errors; no horizontal scrolling on a
1366x768 screen. Screenshots are left in the test's tmp directory for a person to look at."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import GILSCOPE, PYTHONS, ROOT, npm_module

CHECK = os.path.join(ROOT, "tests", "functional", "html_check.js")
CHROMIUM = "/usr/bin/chromium"

EVIL_FN = "</script><img src=x onerror=alert(1)>"
EVIL_FN2 = "<script>alert(2)</script>spin"
EVIL_THREAD = "<b onmouseover=alert(3)>t</b>"

TARGET = r'''
import threading, types
EVIL_FN, EVIL_FN2, EVIL_THREAD = %r, %r, %r

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

a, b = named(spin, EVIL_FN), named(spin, EVIL_FN2)
ts = [threading.Thread(target=a, args=(3_000_000,), name=EVIL_THREAD),
      threading.Thread(target=b, args=(3_000_000,), name=EVIL_THREAD + "2")]
for t in ts:
    t.start()
for t in ts:
    t.join()
''' % (EVIL_FN, EVIL_FN2, EVIL_THREAD)


def browser_tools():
    """node and playwright-core's directory; skips with the reason when one is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("SKIPPED: chromium is not installed (apt-get install chromium)")
    node = shutil.which("node")
    if not node:
        pytest.skip("SKIPPED: node is not installed (apt-get install nodejs npm)")
    return node, npm_module("playwright-core@1")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    python = PYTHONS["pyenv-3.11.7-shared"]
    if not os.access(python, os.X_OK):
        pytest.skip(f"SKIPPED: {python} is not installed on this machine")
    node, playwright = browser_tools()
    d = tmp_path_factory.mktemp("htmlpage")
    (d / "hostile.py").write_text(TARGET)
    rec = d / "run.rec"
    p = subprocess.run([GILSCOPE, "record", "--no-summary", "-o", str(rec), "--", python, str(d / "hostile.py")],
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    html = d / "page.html"
    p = subprocess.run([GILSCOPE, "export", "--format", "html", str(rec), "-o", str(html)], capture_output=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    rep = json.loads(subprocess.run([GILSCOPE, "report", "--json", str(rec)], capture_output=True, check=True,
                                    timeout=120).stdout)
    p = subprocess.run([node, CHECK, str(html), str(d)], capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, PLAYWRIGHT_CORE=playwright, CHROMIUM=CHROMIUM, SEARCH="spin"))
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout)
    print(f"screenshots in {d}")
    assert "error" not in seen, seen["error"]
    return d, html, rep, seen


def test_a_row_per_thread_grouped_by_process(page):
    _, _, rep, seen = page
    assert sorted(r["tid"] for r in seen["rows"]) == sorted(t["tid"] for t in rep["threads"])
    assert seen["groups"] == len({t["pid"] for t in rep["threads"]})
    assert all(r["bar"] >= 1 for r in seen["rows"])  # a stacked bar of states on each row


def test_the_table_sorts(page):
    _, _, _, seen = page
    for group in seen["held_first"]:
        assert [float(v) for v in group] == sorted((float(v) for v in group), reverse=True)
    for group in seen["held_second"]:
        assert [float(v) for v in group] == sorted(float(v) for v in group)
    assert seen["aria"] in ("ascending", "descending")
    assert sorted(v for g in seen["name_sorted"] for v in g) == sorted(r["name"].removeprefix("* ")
                                                                      for r in seen["rows"])


def test_a_row_finds_its_track(page):
    _, _, _, seen = page
    t = seen["track"]
    assert t["sel"] == seen["clicked"] and t["selected"] == 1
    assert t["top"] < t["inner"] and t["bottom"] > 0  # the timeline is in the viewport
    assert t["rows"] >= 3 and t["drawn"] > 0


def test_names_are_text_and_nothing_runs(page):
    _, html, _, seen = page
    assert seen["dialogs"] == [] and seen["requests"] == []
    assert "img" not in seen["tags"] and "b" not in seen["tags"] and "iframe" not in seen["tags"]
    assert seen["scripts"] == 2  # the data block and the page's own code
    names = [r["name"] for r in seen["rows"]]
    assert any(EVIL_THREAD in n for n in names), names
    assert EVIL_FN in seen["text"] and EVIL_FN2 in seen["text"]  # the blame and the longest holds name them
    raw = html.read_text()
    data = re.search(r'<script type="application/json" id="gs-data">(.*?)</script>', raw, re.S).group(1)
    assert "<" not in data  # no name can close the data block or open a comment
    assert "innerHTML" not in raw and "insertAdjacentHTML" not in raw and "document.write" not in raw
    assert seen["csp"] and "default-src 'none'" in seen["csp"] and "script-src 'sha256-" in seen["csp"]
    assert "unsafe" not in seen["csp"]  # no inline script, handler or style attribute but the page's own


def test_no_console_errors_and_no_horizontal_scrolling(page):
    _, _, _, seen = page
    assert seen["console"] == [], seen["console"]
    assert seen["scrollWidth"] <= 1366


def test_verdict_names_the_waiter_and_holder(page):
    _, _, rep, seen = page
    assert seen["verdict"] and "utilisation" in seen["verdict"][0]
    assert any("waited longest" in s for s in seen["verdict"]), seen["verdict"]


def test_flame_graphs_show_their_root(page):
    _, _, _, seen = page
    assert seen["flames"], "no flame graph drawn"
    for f in seen["flames"]:
        assert f["height"] == f["depth"] * 17 + 2, f
        assert f["root_alpha"] > 0, f  # the root frame is drawn in the first row
        assert f["width"] <= 1366
    assert seen["flame_visible"]
    assert seen["search_note"].startswith("matched ") and seen["search_note"] != "matched 0.0%"
