"""IPython/Jupyter magics that record what the GIL does while a cell runs, with gilscope.

    %load_ext gilscope           (or its first name: %load_ext gilscope_ipython)
    %%giltracer [-o FILE] [--html FILE] [--rate HZ]
    ...cell...
    %giltracer [options] statement

gilscope attaches to the kernel's own process for the cell's duration (it stops the kernel's
threads for a few milliseconds to do so), then the summary table of the threads that did work
is shown, with a link to the HTML report (timeline, blame, flame graphs) and the report itself
inline in notebooks. gilscope (the package's binary, or $GILSCOPE) may attach to this process:
as root, or with CAP_SYS_PTRACE and CAP_PERFMON.
"""
import os
import shlex
import signal
import subprocess
import tempfile
import time

from ._api import _allow_tracing_by_children, binary

__all__ = ["load_ipython_extension", "record_cell"]


class Recording:
    def __init__(self, path, html, table, returncode, stderr):
        self.path, self.html, self.table, self.returncode, self.stderr = path, html, table, returncode, stderr

    def _repr_html_(self):
        from html import escape
        if not self.html:
            return f"<pre>{escape(self.table)}</pre>"
        with open(self.html, encoding="utf-8", errors="replace") as f:
            page = f.read()
        return (f"<pre>{escape(self.table)}</pre>"
                f'<p><a href="{escape(self.html)}" target="_blank">HTML report: {escape(self.html)}</a></p>'
                f'<iframe srcdoc="{escape(page, quote=True)}" style="width:100%;height:700px;border:1px solid #ccc">'
                f"</iframe>")

    def __repr__(self):
        return self.table + (f"\nHTML report: {self.html}" if self.html else "")


def record_cell(run, output=None, html=None, rate=1000, timeout=30.0):
    """Runs run() while gilscope records this process; returns a Recording."""
    _allow_tracing_by_children()
    outdir = tempfile.mkdtemp(prefix="giltracer-")
    output = output or os.path.join(outdir, "giltracer.rec")
    html = html if html is not None else os.path.join(outdir, "giltracer.html")
    cmd = [binary(), "record", "-p", str(os.getpid()), "--no-summary", "-o", output,
           "--sample-rate", str(rate)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    # gilscope says "recording process N" once every thread is instrumented
    line, deadline = "", time.monotonic() + timeout
    while "recording process" not in line:
        line = proc.stderr.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            rest = proc.stderr.read()
            raise RuntimeError(f"gilscope could not attach: {line.strip()} {rest.strip()}".strip())
    try:
        run()
    finally:
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=timeout)[1]
    rep = subprocess.run([binary(), "report", "--active", output], capture_output=True, text=True)
    if html:
        h = subprocess.run([binary(), "export", "--format", "html", "-o", html, output], capture_output=True,
                           text=True)
        if h.returncode != 0:
            html = None
    return Recording(output, html, rep.stdout or rep.stderr, proc.returncode, err)


def _parse(line):
    import argparse
    ap = argparse.ArgumentParser(prog="%%giltracer", add_help=False)
    ap.add_argument("-o", "--output")
    ap.add_argument("--html")
    ap.add_argument("--rate", type=int, default=1000)
    return ap.parse_known_args(shlex.split(line))


def load_ipython_extension(ipython):
    from IPython.core.magic import register_line_cell_magic

    @register_line_cell_magic
    def giltracer(line, cell=None):
        opts, rest = _parse(line)
        code = cell if cell is not None else " ".join(rest)
        result = {}

        def run():
            result["r"] = ipython.run_cell(code)

        rec = record_cell(run, opts.output, opts.html, opts.rate)
        try:
            from IPython.display import display
            display(rec)
        except ImportError:
            print(rec)
        return None
