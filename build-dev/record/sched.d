build-dev/record/sched.o: src/record/sched.c src/record/sched.h \
 src/probe/evlist.h src/base/util.h src/probe/perf_event.h \
 src/probe/tracefs.h src/record/ring_decode.h src/base/recfile.h
src/record/sched.h:
src/probe/evlist.h:
src/base/util.h:
src/probe/perf_event.h:
src/probe/tracefs.h:
src/record/ring_decode.h:
src/base/recfile.h:
