build-dev/record/pyprobes.o: src/record/pyprobes.c src/record/pyprobes.h \
 src/cpython/python.h src/cpython/pylayout.h src/probe/evlist.h \
 src/probe/inline.h src/record/emit.h src/base/recfile.h \
 src/record/merge.h src/base/procfs.h src/base/util.h src/probe/tracefs.h \
 src/probe/x86.h src/record/ring_decode.h
src/record/pyprobes.h:
src/cpython/python.h:
src/cpython/pylayout.h:
src/probe/evlist.h:
src/probe/inline.h:
src/record/emit.h:
src/base/recfile.h:
src/record/merge.h:
src/base/procfs.h:
src/base/util.h:
src/probe/tracefs.h:
src/probe/x86.h:
src/record/ring_decode.h:
