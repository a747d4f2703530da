build-dev/output/flame.o: src/output/flame.c src/output/flame.h \
 src/analysis/analysis.h src/base/recfile.h src/base/util.h
src/output/flame.h:
src/analysis/analysis.h:
src/base/recfile.h:
src/base/util.h:
