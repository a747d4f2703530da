"""`python -m gilscope ...` and the `gilscope` console script: the bundled C binary, executed in
this process's place (its exit status, signals and terminal are the binary's)."""
import os
import sys


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "gilscope")
    exe = os.environ.get("GILSCOPE") or here
    try:
        os.execv(exe, [exe, *sys.argv[1:]])
    except OSError as e:
        sys.stderr.write(f"gilscope: cannot run the gilscope binary {exe}: {e.strerror}; reinstall the "
                         f"package with `pip install .` from the checkout, or set $GILSCOPE to the binary\n")
        return 127


if __name__ == "__main__":
    sys.exit(main())
