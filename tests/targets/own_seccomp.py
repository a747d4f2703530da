"""A program with its own seccomp filter (no_new_privs, then a filter that fails uname() with EPERM),
installed before it creates threads and processes. Reports what it saw: whether its filter works,
whether a filter with a listener of its own could be installed too (errno), and the pids of a Python
child started with subprocess from a thread and of an os.fork() child."""
import ctypes, errno, os, struct, subprocess, sys, threading
import facts

libc = ctypes.CDLL(None, use_errno=True)


def install(action, flags=0):
    """0 or the errno; a listener's descriptor is closed (its calls then fail with ENOSYS)."""
    # ld nr; jeq uname -> ret action; ret allow
    ins = [(0x20, 0, 0, 0), (0x15, 0, 1, 63), (0x06, 0, 0, action), (0x06, 0, 0, 0x7fff0000)]
    prog = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in ins))
    fprog = ctypes.create_string_buffer(struct.pack("HxxxxxxQ", len(ins), ctypes.addressof(prog)))
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    r = libc.syscall(317, 1, flags, fprog)  # seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)
    if r < 0:
        return ctypes.get_errno()
    if flags:
        os.close(r)
    return 0


# a filter with a listener of its own; then one that fails uname with EPERM (RET_ERRNO takes
# precedence over RET_USER_NOTIF, so uname fails with EPERM whatever the first one did)
listener = install(0x7fc00000, flags=8)  # SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER
own = install(0x00050000 | errno.EPERM)  # SECCOMP_RET_ERRNO | EPERM
try:
    os.uname()
    blocked = False
except PermissionError:
    blocked = True
children = []


def run_child():
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid()); sum(range(10**5))"],
                       capture_output=True, text=True, check=True)
    children.append(int(p.stdout))


t = threading.Thread(target=run_child)
t.start()
t.join()
pid = os.fork()
if pid == 0:
    sum(range(10**5))
    os._exit(0)
os.waitpid(pid, 0)
children.append(pid)
facts.report(kind="seccomp", listener_errno=listener, own=own, uname_blocked=blocked, children=children)
