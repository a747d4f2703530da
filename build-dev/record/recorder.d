build-dev/record/recorder.o: src/record/recorder.c src/record/recorder.h \
 src/cpython/elfsym.h src/probe/inline.h src/cpython/python.h \
 src/cpython/pylayout.h src/probe/perf_event.h src/record/ring_decode.h \
 src/base/recfile.h src/base/procfs.h src/cpython/pystack.h \
 src/record/natsample.h src/cpython/native.h src/probe/tracefs.h \
 src/base/util.h src/probe/x86.h
src/record/recorder.h:
src/cpython/elfsym.h:
src/probe/inline.h:
src/cpython/python.h:
src/cpython/pylayout.h:
src/probe/perf_event.h:
src/record/ring_decode.h:
src/base/recfile.h:
src/base/procfs.h:
src/cpython/pystack.h:
src/record/natsample.h:
src/cpython/native.h:
src/probe/tracefs.h:
src/base/util.h:
src/probe/x86.h:
