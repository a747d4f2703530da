build-dev/cpython/python.o: src/cpython/python.c src/cpython/python.h \
 src/cpython/pylayout.h src/cpython/elfsym.h src/base/procfs.h \
 src/base/util.h src/probe/x86.h
src/cpython/python.h:
src/cpython/pylayout.h:
src/cpython/elfsym.h:
src/base/procfs.h:
src/base/util.h:
src/probe/x86.h:
