build-dev/output/trace.o: src/output/trace.c src/output/trace.h \
 src/analysis/analysis.h src/base/recfile.h src/output/report.h \
 src/base/util.h
src/output/trace.h:
src/analysis/analysis.h:
src/base/recfile.h:
src/output/report.h:
src/base/util.h:
