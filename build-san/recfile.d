build-san/recfile.o: src/recfile.c src/recfile.h src/util.h
src/recfile.h:
src/util.h:
