build-dev/record/sink.o: src/record/sink.c src/record/sink.h \
 src/base/recfile.h src/base/util.h
src/record/sink.h:
src/base/recfile.h:
src/base/util.h:
