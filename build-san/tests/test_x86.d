build-san/tests/test_x86: tests/unit/test_x86.c src/x86.h
src/x86.h:
