build-dev/record/merge.o: src/record/merge.c src/record/merge.h \
 src/base/recfile.h src/base/util.h
src/record/merge.h:
src/base/recfile.h:
src/base/util.h:
