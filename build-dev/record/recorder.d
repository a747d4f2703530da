build-dev/record/recorder.o: src/record/recorder.c src/record/recorder.h \
 src/base/util.h src/probe/tracefs.h src/record/session.h \
 src/probe/evlist.h src/record/emit.h src/base/recfile.h \
 src/record/merge.h src/record/pyprobes.h src/cpython/python.h \
 src/cpython/pylayout.h src/probe/inline.h src/record/sched.h \
 src/record/sink.h src/record/stacks.h
src/record/recorder.h:
src/base/util.h:
src/probe/tracefs.h:
src/record/session.h:
src/probe/evlist.h:
src/record/emit.h:
src/base/recfile.h:
src/record/merge.h:
src/record/pyprobes.h:
src/cpython/python.h:
src/cpython/pylayout.h:
src/probe/inline.h:
src/record/sched.h:
src/record/sink.h:
src/record/stacks.h:
