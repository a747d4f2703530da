build-san/tests/test_python: tests/unit/test_python.c src/elfsym.h \
 src/python.h src/pylayout.h
src/elfsym.h:
src/python.h:
src/pylayout.h:
