build-dev/probe/inline.o: src/probe/inline.c src/probe/inline.h \
 src/cpython/python.h src/cpython/pylayout.h src/base/procfs.h \
 src/base/util.h src/probe/x86.h
src/probe/inline.h:
src/cpython/python.h:
src/cpython/pylayout.h:
src/base/procfs.h:
src/base/util.h:
src/probe/x86.h:
