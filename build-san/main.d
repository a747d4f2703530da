build-san/main.o: src/main.c src/analysis.h src/recfile.h src/flame.h \
 src/trace.h src/html.h src/perfetto.h src/record.h src/report.h \
 src/util.h
src/analysis.h:
src/recfile.h:
src/flame.h:
src/trace.h:
src/html.h:
src/perfetto.h:
src/record.h:
src/report.h:
src/util.h:
