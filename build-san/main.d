build-san/main.o: src/main.c src/analysis.h src/recfile.h src/record.h \
 src/report.h src/util.h
src/analysis.h:
src/recfile.h:
src/record.h:
src/report.h:
src/util.h:
