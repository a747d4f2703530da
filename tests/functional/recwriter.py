"""A writer of gilscope recordings for tests: hand-written event sequences with known answers.

It follows src/base/recfile.h exactly: a 64-byte header (magic "GILSCOPE", u32 format version,
u32 header size 64, u32 flags, u32 reserved, u64 CLOCK_REALTIME ns, u64 CLOCK_MONOTONIC ns at
start, zeros), then records of a 32-byte struct gs_rec (u16 type, u16 size, u32 pid, u32 tid,
i32 arg, u64 time, u64 arg64) followed by a payload padded with zeros to a multiple of 8 (META:
"key\\0" then the value, arg its type: in format 2 an integer is a u64 (GS_META_U64 = 1), text
"value\\0" (GS_META_TEXT = 0), format 1 has text only; COMM: the NUL-terminated name;
PYFRAME/NATFRAME: "name\\0file\\0"; STACK: u32 frame ids, innermost first). Format 2 (the
default) is what gilscope writes; format 1 is what older recordings hold, still read. Records
are written in time order (stable: records given the same time keep the order they were added
in), as the recorder writes them.

Times are given in microseconds from the recording's start (START_NS on CLOCK_MONOTONIC)."""
import struct

MAGIC = b"GILSCOPE"
VERSION = 2
META_TEXT, META_U64 = 0, 1
HEADER_SIZE = 64
START_NS = 1_000_000_000
REALTIME_NS = 1_800_000_000_000_000_000

META, GIL_WAIT, GIL_WRITE, DROPREQ, SWITCH_OUT, SWITCH_IN, WAKEUP, FORK, EXIT, COMM, LOST, THREAD, END, \
    PROC_EXIT, PYFRAME, STACK, SAMPLE, COUNTER, NATFRAME = range(1, 20)

# sched_switch prev_state values (the kernel's TASK_* bits)
RUNNING_PREEMPTED, SLEEP, DISK = 0, 1, 2


def ns(us):
    """The absolute CLOCK_MONOTONIC time of `us` microseconds after the start."""
    return START_NS + int(round(us * 1000))


class Recording:
    def __init__(self, start_ns=START_NS, version=VERSION):
        self.start_ns, self.version = start_ns, version
        self.records = []  # (time, seq, bytes)

    def add(self, type_, us, pid=0, tid=0, arg=0, arg64=0, payload=b""):
        size = 32 + ((len(payload) + 7) & ~7)
        assert size <= 0xfff8, "record too large"
        head = struct.pack("<HHIIiQQ", type_, size, pid, tid, arg, ns(us) if us is not None else 0, arg64)
        body = payload + b"\0" * (size - 32 - len(payload))
        self.records.append((ns(us) if us is not None else 0, len(self.records), head + body))
        return self

    # the run and the process
    def meta(self, pid, key, value, us=0):
        """A fact: an int as a u64 in format 2 (decimal text in format 1), else text."""
        if isinstance(value, int) and self.version >= 2:
            return self.add(META, us, pid=pid, arg=META_U64, payload=key.encode() + b"\0" + struct.pack("<Q", value))
        return self.add(META, us, pid=pid, arg=META_TEXT, payload=key.encode() + b"\0" + str(value).encode() + b"\0")

    def launch(self, pid, command="python3 known.py"):
        """The run's META records of `record -- COMMAND` whose process is pid."""
        self.meta(0, "gilscope_version", "0.1.0")
        self.meta(0, "clock", "CLOCK_MONOTONIC")
        self.meta(0, "mode", "launch")
        self.meta(0, "command", command)
        return self.meta(0, "target_pid", pid)

    def python(self, us, pid, version="3.11.7",
               mechanism="inline probes on take_gil and the 2 stores to gil->locked (1 take, 1 release)"):
        """The process's META records once its interpreter is found (after its exec: an exec's COMM
        starts a new image, which is not Python until these say so)."""
        self.meta(pid, "python.version", version, us)
        self.meta(pid, "python.path", "/usr/lib/libpython3.11.so.1.0", us)
        self.meta(pid, "python.build", "shared libpython, symbols, layout from built-in table", us)
        if self.version >= 2:  # format 1 told it by the mechanism sentence
            self.meta(pid, "python.forced_drops_told_apart", 1, us)
        return self.meta(pid, "mechanism", mechanism, us)

    # scheduler
    def fork(self, us, pid, tid, parent_pid, parent_tid):
        return self.add(FORK, us, pid=pid, tid=tid, arg=parent_pid, arg64=parent_tid)

    def comm(self, us, pid, tid, name, by_exec=False):
        return self.add(COMM, us, pid=pid, tid=tid, arg=1 if by_exec else 0, payload=name.encode() + b"\0")

    def switch_in(self, us, pid, tid):
        return self.add(SWITCH_IN, us, pid=pid, tid=tid)

    def switch_out(self, us, pid, tid, state):
        return self.add(SWITCH_OUT, us, pid=pid, tid=tid, arg64=state)

    def wakeup(self, us, tid, waker=0):
        return self.add(WAKEUP, us, pid=0, tid=tid, arg=waker)

    def exit(self, us, pid, tid):
        return self.add(EXIT, us, pid=pid, tid=tid)

    def proc_exit(self, us, pid, status=0):
        return self.add(PROC_EXIT, us, pid=pid, arg=status)

    def lost(self, us, count, cpu=0):
        return self.add(LOST, us, arg=cpu, arg64=count)

    def end(self, us, lost=0, status=0):
        return self.add(END, us, arg=status, arg64=lost)

    # the GIL (GIL events carry pid 0, as the probes record them)
    def wait(self, us, tid, gil=0):
        return self.add(GIL_WAIT, us, tid=tid, arg64=gil)

    def take(self, us, tid, gil=0):
        return self.add(GIL_WRITE, us, tid=tid, arg=1, arg64=gil)

    def release(self, us, tid, gil=0):
        return self.add(GIL_WRITE, us, tid=tid, arg=0, arg64=gil)

    def drop_request(self, us, tid, value=1):
        return self.add(DROPREQ, us, tid=tid, arg=value)

    # stacks
    def pyframe(self, fid, qualname, filename, line):
        return self.add(PYFRAME, 0, arg=line, arg64=fid, payload=qualname.encode() + b"\0" + filename.encode() + b"\0")

    def pystack(self, sid, frames_innermost_first):
        payload = b"".join(struct.pack("<I", f) for f in frames_innermost_first)
        return self.add(STACK, 0, arg=len(frames_innermost_first), arg64=sid, payload=payload)

    def sample(self, us, pid, tid, stack):
        return self.add(SAMPLE, us, pid=pid, tid=tid, arg64=stack)

    def bytes(self):
        head = MAGIC + struct.pack("<IIIIQQ", self.version, HEADER_SIZE, 0, 0, REALTIME_NS, self.start_ns)
        head += b"\0" * (HEADER_SIZE - len(head))
        return head + b"".join(r for _, _, r in sorted(self.records, key=lambda x: (x[0], x[1])))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.bytes())
        return path
