"""Two threads, each running code in its own sub-interpreter (3.14's concurrent.interpreters:
each interpreter has its own GIL), next to a main-interpreter thread."""
import threading
from concurrent import interpreters
from facts import report

CODE = "x = 0\nfor i in range(1_500_000):\n    x += i\n"

def in_subinterpreter():
    report(kind="sub")
    interp = interpreters.create()
    interp.exec(CODE)
    interp.close()

def in_main():
    report(kind="main")
    exec(CODE)

ts = [threading.Thread(target=in_subinterpreter) for _ in range(2)] + [threading.Thread(target=in_main)]
for t in ts: t.start()
for t in ts: t.join()
print("subinterpreters done")
