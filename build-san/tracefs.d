build-san/tracefs.o: src/tracefs.c src/tracefs.h src/util.h
src/tracefs.h:
src/util.h:
