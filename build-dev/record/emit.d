build-dev/record/emit.o: src/record/emit.c src/record/emit.h \
 src/base/recfile.h src/record/merge.h src/base/util.h
src/record/emit.h:
src/base/recfile.h:
src/record/merge.h:
src/base/util.h:
