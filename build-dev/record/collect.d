build-dev/record/collect.o: src/record/collect.c src/base/util.h \
 src/record/ring_decode.h src/base/recfile.h src/record/session.h \
 src/probe/evlist.h src/record/emit.h src/record/merge.h \
 src/record/pyprobes.h src/cpython/python.h src/cpython/pylayout.h \
 src/probe/inline.h src/record/recorder.h src/record/sched.h \
 src/record/sink.h src/record/stacks.h
src/base/util.h:
src/record/ring_decode.h:
src/base/recfile.h:
src/record/session.h:
src/probe/evlist.h:
src/record/emit.h:
src/record/merge.h:
src/record/pyprobes.h:
src/cpython/python.h:
src/cpython/pylayout.h:
src/probe/inline.h:
src/record/recorder.h:
src/record/sched.h:
src/record/sink.h:
src/record/stacks.h:
