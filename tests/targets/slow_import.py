"""Takes 0.4 s of CPU to import: --import keeps it out of the figures."""
import time
_end = time.monotonic() + 0.4
_x = 0
while time.monotonic() < _end:
    _x += 1
