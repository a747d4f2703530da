build-dev/record/stacks.o: src/record/stacks.c src/record/stacks.h \
 src/cpython/python.h src/cpython/pylayout.h src/record/emit.h \
 src/base/recfile.h src/record/merge.h src/base/procfs.h src/base/util.h \
 src/cpython/elfsym.h src/cpython/native.h src/cpython/pystack.h \
 src/record/intern.h src/record/natsample.h
src/record/stacks.h:
src/cpython/python.h:
src/cpython/pylayout.h:
src/record/emit.h:
src/base/recfile.h:
src/record/merge.h:
src/base/procfs.h:
src/base/util.h:
src/cpython/elfsym.h:
src/cpython/native.h:
src/cpython/pystack.h:
src/record/intern.h:
src/record/natsample.h:
