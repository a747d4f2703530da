"""Recordings made before a change give the same outputs after it, byte for byte.

tests/fixtures/golden/*.rec were recorded by gilscope 0.1.0 before the recorder was split into
modules (format version of that day: they also prove old recordings are still read). Their
outputs (report --json, report, blame, every folded view, trace JSON, Perfetto, HTML) are in
expected/: the text ones in full, all of them as SHA-256 sums. A change that means to alter an
output rewrites expected/ with outputs.sh and says why in its commit."""
import hashlib
import os
import subprocess

import pytest

from conftest import GILSCOPE, ROOT

GOLDEN = os.path.join(ROOT, "tests", "fixtures", "golden")


def _sums():
    with open(os.path.join(GOLDEN, "expected", "SHA256SUMS")) as f:
        return dict(reversed(line.split()) for line in f if line.strip())


def test_golden_outputs_are_unchanged(tmp_path):
    sums = _sums()
    assert len(sums) >= 3 * 12, "expected/SHA256SUMS lost its entries"
    subprocess.run([os.path.join(GOLDEN, "outputs.sh"), GILSCOPE, str(tmp_path)], check=True)
    produced = sorted(os.listdir(tmp_path))
    assert produced == sorted(sums), "the set of outputs changed"
    changed = []
    for name in produced:
        with open(tmp_path / name, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != sums[name]:
            changed.append(name)
            full = os.path.join(GOLDEN, "expected", name)
            if os.path.exists(full):  # show the first differing line of the readable ones
                with open(full, "rb") as f:
                    want = f.read().splitlines()
                got = data.splitlines()
                for i, (a, b) in enumerate(zip(want, got)):
                    if a != b:
                        print(f"{name}:{i + 1}:\n  expected {a[:200]!r}\n  produced {b[:200]!r}")
                        break
    assert not changed, f"outputs differ from the recordings' expected ones: {changed}"
