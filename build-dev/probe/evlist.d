build-dev/probe/evlist.o: src/probe/evlist.c src/probe/evlist.h \
 src/base/util.h src/probe/perf_event.h
src/probe/evlist.h:
src/base/util.h:
src/probe/perf_event.h:
