"""gilscope: exactly what CPython's GIL does in a multi-threaded program.

    import gilscope

    with gilscope.record() as rec:        # this process's own threads, for the block
        run_my_threads()
    rec.report()["threads"]               # `gilscope report --json`, as a dictionary

    gilscope.run(["python3", "app.py"]).report()   # a command, recorded from its start
    gilscope.load("run.rec").text()                # a recording made earlier

Errors raise gilscope.GilscopeError with gilscope's sentence. The pytest plugin
(`pytest --gilscope`) and the IPython magics (`%load_ext gilscope`, `%%giltracer`) come with the
package; `python -m gilscope` and the `gilscope` command run the bundled binary.
"""
from ._api import GilscopeError, Recording, binary, load, record, run

__all__ = ["GilscopeError", "Recording", "binary", "load", "record", "run", "load_ipython_extension"]
__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """`%load_ext gilscope`: the %%giltracer and %giltracer magics."""
    from .ipython import load_ipython_extension as load

    load(ipython)
