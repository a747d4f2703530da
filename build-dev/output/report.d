build-dev/output/report.o: src/output/report.c src/output/report.h \
 src/analysis/analysis.h src/base/recfile.h src/base/util.h
src/output/report.h:
src/analysis/analysis.h:
src/base/recfile.h:
src/base/util.h:
