build-san/analysis.o: src/analysis.c src/analysis.h src/recfile.h \
 src/util.h
src/analysis.h:
src/recfile.h:
src/util.h:
