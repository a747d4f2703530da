#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_ring_decode (a perf ring holding one record of each kind
gilscope decodes, as the kernel lays them out for record/sched.c's and record/pyprobes.c's attributes) and fuzz_inline (an
inline-probe ring with committed slots), under fuzz/corpus/."""
import os
import struct
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def rec(typ, misc, body):
    body += b"\0" * (-(len(body) + 8) % 8)
    return struct.pack("<IHH", typ, misc, len(body) + 8) + body


def trailer(pid, tid, time, cpu, ident):
    return struct.pack("<IIQIIQ", pid, tid, time, cpu, 0, ident)


def sample(ident, pid, tid, time, ip=None, raw=None):
    b = struct.pack("<Q", ident)
    if ip is not None:
        b += struct.pack("<Q", ip)
    b += struct.pack("<IIQII", pid, tid, time, 1, 0)
    if raw is not None:
        b += struct.pack("<I", len(raw)) + raw
    return rec(9, 2, b)


# sched_switch raw: common fields (8), prev_comm[16], prev_pid, prev_prio, prev_state (8) ...
switch_raw = b"\x3c\x01\0\0\x10\x10\0\0" + b"python3".ljust(16, b"\0") + struct.pack("<iiq", 4242, 120, 1) + \
    b"swapper/1".ljust(16, b"\0") + struct.pack("<ii", 0, 120)
# sched_wakeup raw: common (8), comm[16], pid, prio, target_cpu
wakeup_raw = b"\x3d\x01\0\0\x10\x10\0\0" + b"python3".ljust(16, b"\0") + struct.pack("<iii", 4243, 120, 1)
T = 5_000_000_000
ring = b"".join([
    sample(1, 4242, 4242, T + 1, raw=switch_raw),
    sample(2, 4242, 4242, T + 2, raw=wakeup_raw),
    sample(3, 4242, 4243, T + 3, ip=0x7F0000001234),
    sample(4, 4242, 4243, T + 4, ip=0x7F0000001240),
    sample(5, 4242, 4242, T + 5, ip=0x7F0000001250),
    sample(6, 4242, 4243, T + 6, ip=0x7F0000001260),
    sample(7, 4242, 4243, T + 7, ip=0x7F0000001270),
    sample(64, 4242, 4243, T + 7),  # record -e's counters: a page fault
    rec(14, 0, trailer(4242, 4243, T + 8, 1, 10)),
    rec(14, 0x2000, trailer(4242, 4243, T + 9, 1, 10)),
    rec(3, 0x2000, struct.pack("<II", 4242, 4242) + b"python3\0" + trailer(4242, 4242, T + 10, 1, 10)),
    rec(7, 0, struct.pack("<IIIIQ", 4242, 4242, 4244, 4242, T + 11) + trailer(4242, 4244, T + 11, 1, 10)),
    rec(4, 0, struct.pack("<IIIIQ", 4242, 4242, 4244, 4242, T + 12) + trailer(4242, 4244, T + 12, 1, 10)),
    rec(2, 0, struct.pack("<QQ", 10, 3) + trailer(0, 0, T + 13, 1, 10)),
    rec(5, 0, struct.pack("<QQQ", T + 14, 10, 10) + trailer(0, 0, T + 14, 1, 10)),
])
os.makedirs(os.path.join(root, "ring_decode"), exist_ok=True)
for name, flags, tail in (("ring", 0, 0), ("ring-wrapped", 0, 4096 - 20), ("ring-2pages", 1, 8000)):
    hdr = struct.pack("<BHHBBBBB", flags, tail, len(ring), 32, 8, 24, 4, 0)
    with open(os.path.join(root, "ring_decode", name), "wb") as f:
        f.write(hdr + ring)

# inline rings (probe/x86.h): per ring a 256-byte header (head at 0, lost at 8, tail at 128), then
# 32-byte slots {seq+1, tsc, tid, code, gil}. Input: byte 0 = log2(slots) | log2(rings) << 3, the
# reader's tail (8 bytes, ring r starts at tail + r), a flags byte, then the rings' bytes.
def ring(nslots, head, lost, tail, slots):
    hdr = struct.pack("<QQ", head, lost).ljust(128, b"\0") + struct.pack("<Q", tail).ljust(128, b"\0")
    body = bytearray(nslots * 32)
    for seq, s in slots:
        i = (seq % nslots) * 32
        body[i:i + 32] = s
    return hdr + bytes(body)


def slot(seq, tsc, tid, code, gil):
    return seq, struct.pack("<QQIIQ", seq + 1, tsc, tid, code, gil)


os.makedirs(os.path.join(root, "inline"), exist_ok=True)
# one ring of 8 slots, 5 committed
r0 = ring(8, 5, 0, 0, [slot(i, 10_000_000 + 1000 * i, 100 + i % 2, (i % 3) | (i << 8), 0x7F00000010 if i % 2 else 0)
                       for i in range(5)])
with open(os.path.join(root, "inline", "ring"), "wb") as f:
    f.write(bytes([3]) + struct.pack("<Q", 0) + b"\0" + r0)
# a full ring of 4 that wrapped (reader at 6), 3 lost
r0 = ring(4, 10, 3, 6, [slot(6 + i, 2**40 + i, 100, 1, 0) for i in range(4)])
with open(os.path.join(root, "inline", "ring-full"), "wb") as f:
    f.write(bytes([2]) + struct.pack("<Q", 6) + b"\0" + r0)
# two rings of 8 (reader at 0 and 1): ring 0 out of TSC order (a preempted writer), a reservation
# not committed in ring 1 after a committed slot
rings = ring(8, 3, 0, 0, [slot(0, 5000, 100, 1, 0), slot(1, 3000, 101, 0, 0), slot(2, 7000, 100, 0, 0)]) + \
    ring(8, 4, 0, 1, [slot(1, 4000, 102, 2, 0x10), slot(2, 6000, 102, 1, 0x10)])
with open(os.path.join(root, "inline", "rings-2"), "wb") as f:
    f.write(bytes([3 | 1 << 3]) + struct.pack("<Q", 0) + b"\0" + rings)
