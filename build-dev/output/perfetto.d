build-dev/output/perfetto.o: src/output/perfetto.c src/output/perfetto.h \
 src/analysis/analysis.h src/base/recfile.h src/base/util.h
src/output/perfetto.h:
src/analysis/analysis.h:
src/base/recfile.h:
src/base/util.h:
