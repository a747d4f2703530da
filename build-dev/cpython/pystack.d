build-dev/cpython/pystack.o: src/cpython/pystack.c src/cpython/pystack.h \
 src/cpython/python.h src/cpython/pylayout.h src/cpython/elfsym.h \
 src/base/util.h
src/cpython/pystack.h:
src/cpython/python.h:
src/cpython/pylayout.h:
src/cpython/elfsym.h:
src/base/util.h:
