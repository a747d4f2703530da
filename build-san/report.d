build-san/report.o: src/report.c src/report.h src/analysis.h \
 src/recfile.h src/util.h
src/report.h:
src/analysis.h:
src/recfile.h:
src/util.h:
