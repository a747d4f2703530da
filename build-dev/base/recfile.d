build-dev/base/recfile.o: src/base/recfile.c src/base/recfile.h \
 src/base/util.h
src/base/recfile.h:
src/base/util.h:
