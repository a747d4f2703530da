build-dev/output/html.o: src/output/html.c src/output/html.h \
 src/analysis/analysis.h src/base/recfile.h src/output/flame.h \
 src/output/report.h src/base/util.h
src/output/html.h:
src/analysis/analysis.h:
src/base/recfile.h:
src/output/flame.h:
src/output/report.h:
src/base/util.h:
