"""Helpers for target programs: each thread reports what it measured about itself to the file
named by $GS_FACTS (JSON lines), so tests compare gilscope's figures with the truth."""
import json, os, threading

_lock = threading.Lock()

def report(**kw):
    path = os.environ.get("GS_FACTS")
    if not path:
        return
    kw.setdefault("tid", threading.get_native_id())
    with _lock, open(path, "a") as f:
        f.write(json.dumps(kw) + "\n")
