build-dev/record/launch.o: src/record/launch.c src/base/procfs.h \
 src/base/util.h src/cpython/elfsym.h src/probe/x86.h \
 src/record/session.h src/probe/evlist.h src/record/emit.h \
 src/base/recfile.h src/record/merge.h src/record/pyprobes.h \
 src/cpython/python.h src/cpython/pylayout.h src/probe/inline.h \
 src/record/recorder.h src/record/sched.h src/record/sink.h \
 src/record/stacks.h
src/base/procfs.h:
src/base/util.h:
src/cpython/elfsym.h:
src/probe/x86.h:
src/record/session.h:
src/probe/evlist.h:
src/record/emit.h:
src/base/recfile.h:
src/record/merge.h:
src/record/pyprobes.h:
src/cpython/python.h:
src/cpython/pylayout.h:
src/probe/inline.h:
src/record/recorder.h:
src/record/sched.h:
src/record/sink.h:
src/record/stacks.h:
