build-dev/probe/perf_event.o: src/probe/perf_event.c \
 src/probe/perf_event.h src/base/util.h
src/probe/perf_event.h:
src/base/util.h:
