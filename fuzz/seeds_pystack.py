#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_pystack (fuzz/corpus/pystack/): a 3.11 memory image with one
thread and a three-frame chain (the layout of tests/unit/test_pystack.c, packed small), a 3.13
_Py_DebugOffsets image (as tests/unit/test_layouts.c builds it) and a location table."""
import os
import struct
import sys

BASE = 0x100000
CODE_TYPE = BASE + 0x40
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "pystack")
os.makedirs(out, exist_ok=True)


def header(sel, index=3, first=10):
    return bytes([sel]) + struct.pack("<hh", index, first)


def walker_image():
    mem = bytearray(0x1400)

    def p64(a, v):
        struct.pack_into("<Q", mem, a - BASE, v)

    def p32(a, v):
        struct.pack_into("<I", mem, a - BASE, v)

    def string(a, s):
        p64(a + 0x10, len(s))
        mem[a - BASE + 0x20] = 0x60
        mem[a - BASE + 0x30:a - BASE + 0x30 + len(s)] = s
        return a

    def code(k):
        c = BASE + 0x800 + k * 0x400
        p64(c + 8, CODE_TYPE)
        p64(c + 0x80, string(c + 0x200, b"f%d" % k))
        p64(c + 0x70, string(c + 0x280, b"prog.py"))
        p64(c + 0x88, c + 0x300)
        p64(c + 0x300 + 0x10, 2)
        mem[c - BASE + 0x320] = 0xEF
        mem[c - BASE + 0x321] = 0x00
        p32(c + 0x48, 10 * k)
        return c

    p64(BASE + 0x100, BASE + 0x200)          # interpreters.main
    p64(BASE + 0x200 + 0x10, BASE + 0x300)   # threads.head
    p64(BASE + 0x300 + 0xA0, 777)            # native thread id
    p64(BASE + 0x300 + 0x38, BASE + 0x400)   # cframe
    p64(BASE + 0x400 + 8, BASE + 0x500)      # current_frame
    for i in range(3):
        f, c = BASE + 0x500 + i * 0x80, code(i)
        p64(f + 0x20, c)
        p64(f + 0x38, c + 0xB8 + 2)
        p64(f + 0x30, BASE + 0x500 + (i + 1) * 0x80 if i < 2 else 0)
    return bytes(mem)


def debug_offsets(minor=13):
    b = bytearray(512)
    gil_pos = 120 if minor == 13 else 128
    ts = 152 if minor == 13 else 176
    tid_pos = 240 if minor == 15 else ts + 40
    gil = 0x1E48
    b[0:8] = b"xdebugpy"
    for off, v in ((8, 0x03000000 | minor << 16 | 0x05F0), (24, 0x452F0), (40, 0x278), (48, 0x2F9A0),
                   (gil_pos - 8, 0x10), (gil_pos, gil), (gil_pos + 16, gil + 16), (gil_pos + 24, gil + 8),
                   (ts, 0x130), (tid_pos, 0x98), (tid_pos + 8, 0xA0)):
        struct.pack_into("<Q", b, off, v)
    return bytes(b)


with open(os.path.join(out, "walker-311"), "wb") as f:
    f.write(header(0x10) + walker_image())
with open(os.path.join(out, "debug-offsets-313"), "wb") as f:
    f.write(header(0x00) + debug_offsets(13))
with open(os.path.join(out, "debug-offsets-314"), "wb") as f:
    f.write(header(0x02) + debug_offsets(14))
# a location table: short forms, a one-line form, a long form, no-location
with open(os.path.join(out, "linetable"), "wb") as f:
    f.write(header(0x00, 9, 5) + bytes([0x80, 0x00, 0xD8, 0x02, 0xF0, 0x03, 0x05, 0x02, 0x04, 0xE9, 0x01, 0xF8]))
