#!/usr/bin/python3
"""Mutation check: each mutant below plants one semantic bug (a swapped field, a skewed
duration, a dropped event, a misattributed blame, a slice that ends early, a lost count that is
lost, a target that dies with gilscope, a reverted fuzz fix...) in a scratch copy of the tree,
builds it, and runs the tests that must catch it. It fails when a mutant survives (its tests
pass) or does not apply (the code it names moved: keep the mutants in step with src/).

  tests/mutate.py [--gilscope-tree DIR] [--only NAME,...] [--list]

The scratch copy starts from DIR's build/ (default: this tree's), so only the mutated file is
rebuilt. Run as root (the functional tests need it); about 10 s a mutant on a built tree, more
for the replay ones (they build the sanitized replay library)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KA = "tests/functional/test_known_answers.py"

# (name, file, old text, new text, what catches it: pytest arguments, or ["make", target])
MUTANTS = [
    ("json-swap-held-wait", "src/output/report.c",
     'kv(out, "gil_held_ns", t->held_ns);', 'kv(out, "gil_held_ns", t->wait_ns);',
     [f"{KA}::test_report_json_thread_figures"]),
    ("json-hold-10pc-long", "src/output/report.c",
     'kv(out, "gil_held_ns", t->held_ns);', 'kv(out, "gil_held_ns", t->held_ns + t->held_ns / 10);',
     [f"{KA}::test_report_json_thread_figures"]),
    ("analysis-hold-10pc-long", "src/analysis/analysis.c",
     "\t\tt->held_ns += dt;\n", "\t\tt->held_ns += dt + dt / 10;\n",
     [f"{KA}::test_report_json_thread_figures"]),
    ("analysis-drop-every-10th-gil-event", "src/analysis/analysis.c",
     "\t\ta->gil_events++;\n", "\t\t{\n\t\t\tif (++a->gil_events % 10 == 0)\n\t\t\t\treturn;\n\t\t}\n",
     [f"{KA}::test_report_json_thread_figures"]),
    ("analysis-blame-the-waiter", "src/analysis/blame.c",
     "charge(a, w, g->segs[i].holder, e - s, mapped);",
     "charge(a, w, g->segs[i].holder ? w->tid : 0, e - s, mapped);",
     [f"{KA}::test_report_json_blame_and_wait_sites", f"{KA}::test_blame_names_the_holder_in_the_waiters_section"]),
    ("blame-text-names-the-waiter", "src/output/report.c",
     "b[k].holder, thread_name(a, b[k].holder, name, sizeof(name)));",
     "t->tid, thread_name(a, t->tid, name, sizeof(name)));",
     [f"{KA}::test_blame_names_the_holder_in_the_waiters_section"]),
    ("wait-sites-drop-unsampled-waits", "src/output/report.c",
     "\t\tuint64_t waits = 0;\n\t\tfor", "\t\tuint64_t waits = 0;\n\t\tif (!tops[q]->stack)\n\t\t\tcontinue;\n\t\tfor",
     [f"{KA}::test_report_json_blame_and_wait_sites"]),
    ("trace-slices-end-10pc-early", "src/output/trace.c",
     'PUT_LIT(",\\"dur\\":");\n\tts(s->end - s->start);',
     'PUT_LIT(",\\"dur\\":");\n\tts(s->kind == GS_SLICE_HELD ? s->end - s->start : (s->end - s->start) * 9 / 10);',
     [f"{KA}::test_trace_json_slices_and_arrows"]),
    ("trace-arrow-ends-on-the-releaser", "src/output/trace.c",
     '\t\t\tPUT_LIT(", \\"tid\\": ");\n\t\t\tput_u64(t->tid);',
     '\t\t\tPUT_LIT(", \\"tid\\": ");\n\t\t\tput_u64(r->tid);',
     [f"{KA}::test_trace_json_slices_and_arrows"]),
    ("perfetto-flow-ends-on-the-releaser", "src/output/perfetto.c",
     'track_event(f, time, thread_uuid(t->pid, t->tid), TYPE_INSTANT, "GIL taken"',
     'track_event(f, time, thread_uuid(t->pid, f->rel[r].tid), TYPE_INSTANT, "GIL taken"',
     [f"{KA}::test_perfetto_slices_and_flows"]),
    ("html-slice-kinds-shifted", "src/output/html.c",
     "d % 1000, (int)s->kind);", "d % 1000, ((int)s->kind + 1) % GS_SLICE_UNKNOWN);",
     [f"{KA}::test_html_embedded_data"]),
    ("folded-hold-and-wait-swapped", "src/analysis/stacks.c",
     '{ "hold", "wait", "cpu", "offcpu", "blocking", "offgil" }',
     '{ "wait", "hold", "cpu", "offcpu", "blocking", "offgil" }',
     [f"{KA}::test_folded_stacks_by_kind"]),
    ("diff-sites-never-matched", "src/analysis/diff.c",
     "if (!s || (strcmp(s->function, fn) == 0", "if (!s || (0 && strcmp(s->function, fn) == 0",
     ["tests/functional/test_diff.py::test_diff_of_a_recording_with_itself_matches_every_site"]),
    ("lost-events-not-counted", "src/analysis/analysis.c",
     "a->lost_events += r->arg64;", "a->lost_events += 0;",
     [f"{KA}::test_lost_events_reach_every_output", "tests/functional/test_lost_events.py::test_lost_events_are_counted"]),
    ("target-dies-with-gilscope", "src/record/launch.c",
     "\texecvp(o->argv[0], o->argv);",
     "\tsyscall(157 /* x86-64 prctl */, 1 /* PR_SET_PDEATHSIG */, 9, 0, 0, 0);\n\texecvp(o->argv[0], o->argv);",
     ["tests/functional/test_record.py::test_sigkilled_gilscope_leaves_a_readable_recording"]),
    ("fuzz-fix-reverted-inline-tsc", "src/probe/inline.c",
     "\tif (!(d >= 0.0))\n\t\treturn 0;\n\tif (d >= 9223372036854775807.0)\n\t\treturn INT64_MAX;\n\treturn (uint64_t)d;",
     "\treturn (uint64_t)(int64_t)d;", ["make", "replay"]),
    ("fuzz-fix-reverted-ring-alignment", "src/probe/perf_event.c",
     "hdr.size > head - tail || hdr.size > r->data_size || (hdr.size & 7)", "hdr.size > head - tail",
     ["make", "replay"]),
    ("fuzz-fix-reverted-linetable", "src/cpython/pystack.c",
     "int64_t line = firstlineno;", "int line = firstlineno;", ["make", "replay"]),
    # the recorder's pure modules, the typed metadata and the escaping (restructuring and hardening issues)
    ("merge-ties-newest-first", "src/record/merge.c",
     "return a->seq < b->seq ? -1 : a->seq > b->seq;", "return a->seq > b->seq ? -1 : a->seq < b->seq;",
     ["make", "unit"]),
    ("merge-ignores-the-watermark", "src/record/merge.c",
     "\t\t\tif (!final && p->r.time >= watermark)\n",
     "\t\t\tif (!final && p->r.time >= watermark && 0)\n",
     ["make", "unit"]),
    ("intern-never-fresh", "src/record/intern.c", "\t*fresh = 1;\n", "\t*fresh = 0;\n", ["make", "unit"]),
    ("meta-numbers-unread", "src/base/recfile.c", "\tcase GS_META_U64:\n\t\tif (vlen < 8)",
     "\tcase GS_META_U64:\n\t\tif (vlen < 9)",
     ["make", "unit"]),
    ("forced-drops-flag-inverted", "src/analysis/meta.c", "p->drops_told_apart = m->u64 != 0;",
     "p->drops_told_apart = m->u64 == 0;", [f"{KA}::test_forced_drops_shown_only_when_told_apart"]),
    ("terminal-escaper-passes-esc", "src/base/escape.c", "\treturn cp < 0x20 || (cp >= 0x7f",
     "\treturn (cp < 0x20 && cp != 0x1b) || (cp >= 0x7f",
     ["tests/functional/test_escaping.py::test_record_summary_report_and_blame_escape_names"]),
    ("html-script-json-lets-lt-through", "src/base/escape.c", "(m == JSON_SCRIPT && (cp == '<' ||",
     "(m == JSON_SCRIPT && (cp == 1 ||",
     ["tests/functional/test_escaping.py::test_html_holds_the_names_as_text"]),
    ("guardian-resumes-every-exec", "src/probe/tracetree.c",
     "\t\tif (T->plain[i].dev != (uint64_t)sb.st_dev || T->plain[i].ino != (uint64_t)sb.st_ino)\n\t\t\tcontinue;\n",
     "", ["tests/functional/test_proctree.py::test_execs_of_a_known_program_do_not_wait_for_gilscope"]),
    ("argv-on-the-current-image", "src/analysis/meta.c", "(im = image_at(p, at)) != NULL",
     "(im = image_at(p, at + (UINT64_MAX - at))) != NULL", ["make", "unit"]),
]


def scratch_copy(tree, dest):
    files = subprocess.run(["git", "-C", tree, "ls-files", "-z"], capture_output=True, check=True).stdout
    for rel in files.decode().split("\0"):
        if rel and os.path.isfile(os.path.join(tree, rel)):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(os.path.join(tree, rel), os.path.join(dest, rel))
    if os.path.isdir(os.path.join(tree, "build")):
        shutil.copytree(os.path.join(tree, "build"), os.path.join(dest, "build"), symlinks=True)


def run_mutant(tree, m):
    """CAUGHT, SURVIVED, STALE or BUILD, and details. A mutant whose path is None changes nothing:
    the control, whose tests must pass (else a "catch" could be a broken setup)."""
    name, path, old, new, catch = m
    safe = re.sub(r"[^A-Za-z0-9-]+", "-", name)  # (protoc's --proto_path splits at ':')
    with tempfile.TemporaryDirectory(prefix=f"gilscope-mutant-{safe}-") as d:
        scratch_copy(tree, d)
        if path:
            with open(os.path.join(d, path)) as f:
                text = f.read()
            if text.count(old) != 1:
                return "STALE", f"{path}: the text to mutate appears {text.count(old)} times (expected once)"
            with open(os.path.join(d, path), "w") as f:
                f.write(text.replace(old, new))
        b = subprocess.run(["make", "-C", d, "-j2", "all"], capture_output=True, text=True)
        if b.returncode != 0:
            return "BUILD", b.stdout[-800:] + b.stderr[-800:]
        if catch[0] == "make":
            p = subprocess.run(["make", "-C", d, "-j2", *catch[1:]], capture_output=True, text=True, timeout=1800)
        else:
            env = dict(os.environ, GILSCOPE=os.path.join(d, "build", "gilscope"))
            p = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                *[os.path.join(d, c) for c in catch]], capture_output=True, text=True, env=env,
                               cwd=d, timeout=1800)
        return ("CAUGHT" if p.returncode != 0 else "SURVIVED"), (p.stdout + p.stderr)[-1500:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gilscope-tree", default=ROOT)
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    chosen = [m for m in MUTANTS if not only or m[0] in only]
    if args.list:
        for name, path, _, _, catch in chosen:
            print(f"{name:40} {path:26} -> {' '.join(catch)}")
        return 0
    bad = 0
    tests = sorted({c for m in chosen if m[4][0] != "make" for c in m[4]})
    controls = [("control (no mutant): make replay", None, "", "", ["make", "replay"])]
    if tests:  # (--only with make-caught mutants alone has none)
        controls.insert(0, ("control (no mutant): tests", None, "", "", tests))
    for control in controls:
        verdict, detail = run_mutant(os.path.abspath(args.gilscope_tree), control)
        if verdict == "CAUGHT":  # a timing-sensitive test on a loaded machine: once more
            verdict, detail = run_mutant(os.path.abspath(args.gilscope_tree), control)
        if verdict != "SURVIVED":
            print(f"mutate: the unmutated tree fails its own checks ({control[0]}):\n{detail}")
            return 1
        print(f"ok       {control[0]}", flush=True)
    for m in chosen:
        t0 = time.monotonic()
        verdict, detail = run_mutant(os.path.abspath(args.gilscope_tree), m)
        print(f"{verdict:8} {m[0]:40} {time.monotonic() - t0:5.0f}s  caught by: {' '.join(m[4])}", flush=True)
        if verdict != "CAUGHT":
            bad += 1
            print("         " + detail.strip().replace("\n", "\n         "))
    print(f"mutate: {len(chosen) - bad} of {len(chosen)} mutants caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
