build-dev/analysis/analysis.o: src/analysis/analysis.c \
 src/analysis/analysis.h src/base/recfile.h src/cpython/native.h \
 src/base/util.h
src/analysis/analysis.h:
src/base/recfile.h:
src/cpython/native.h:
src/base/util.h:
