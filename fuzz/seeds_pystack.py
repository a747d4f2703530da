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


def walker_image_313(do):
    """The same chain in CPython 3.13's layout, the offsets read from its _Py_DebugOffsets (do,
    1024 bytes from the start of _PyRuntime, at BASE)."""
    pos = dict(zip(("threads_head", "ts_frame", "ts_native", "fr_previous", "fr_code", "fr_instr", "fr_owner",
                    "co_filename", "co_name", "co_qualname", "co_linetable", "co_firstlineno", "co_adaptive",
                    "by_size", "by_sval", "un_state", "un_length", "un_ascii"),
                   (72, 184, 200, 232, 240, 248, 264, 280, 288, 296, 304, 312, 344, 520, 528, 544, 552, 560)))
    o = {k: struct.unpack_from("<Q", do, v)[0] for k, v in pos.items()}
    mem = bytearray(0x1C00)
    mem[:1024] = do[:1024]

    def p64(a, v):
        struct.pack_into("<Q", mem, a - BASE, v)

    def string(a, s):
        p64(a + o["un_length"], len(s))
        mem[a - BASE + o["un_state"]] = 0x60
        mem[a - BASE + o["un_ascii"]:a - BASE + o["un_ascii"] + len(s)] = s
        return a

    # only interp->threads.head is read: place the interpreter so that it falls at BASE+0x480
    interp, ts = BASE + 0x480 - o["threads_head"], BASE + 0x800
    p64(BASE + 0x400, interp)
    p64(interp + o["threads_head"], ts)
    p64(ts + o["ts_native"], 777)
    p64(ts + o["ts_frame"], BASE + 0xA00)
    for i in range(3):
        f, c = BASE + 0xA00 + i * 0x100, BASE + 0x1000 + i * 0x400
        p64(c + 8, CODE_TYPE)
        p64(c + o["co_qualname"], string(c + 0x200, b"f%d" % i))
        p64(c + o["co_filename"], string(c + 0x280, b"prog.py"))
        p64(c + o["co_linetable"], c + 0x300)
        p64(c + 0x300 + o["by_size"], 2)
        mem[c + 0x300 - BASE + o["by_sval"]] = 0xEF
        struct.pack_into("<i", mem, c - BASE + o["co_firstlineno"], 10 * i)
        p64(f + o["fr_code"], c)
        p64(f + o["fr_instr"], c + o["co_adaptive"] + 2)
        p64(f + o["fr_previous"], BASE + 0xA00 + (i + 1) * 0x100 if i < 2 else 0)
    return bytes(mem)


# Debian's CPython 3.13 (make pythons): its real _Py_DebugOffsets
py313 = "/opt/gilscope-pythons/3.13/usr/bin/python3.13"
if os.path.exists(py313):
    with open(py313, "rb") as f:
        f.seek(0x63F400)  # _PyRuntime (vaddr 0xa3f400) in Debian's 3.13.5 build
        do = f.read(1024)
    if do[:8] == b"xdebugpy":
        with open(os.path.join(out, "walker-313"), "wb") as f:
            f.write(header(0x40) + walker_image_313(do))
        with open(os.path.join(out, "debug-offsets-313-real"), "wb") as f:
            f.write(header(0x00) + do)
# a location table: short forms, a one-line form, a long form, no-location
with open(os.path.join(out, "linetable"), "wb") as f:
    f.write(header(0x00, 9, 5) + bytes([0x80, 0x00, 0xD8, 0x02, 0xF0, 0x03, 0x05, 0x02, 0x04, 0xE9, 0x01, 0xF8]))
