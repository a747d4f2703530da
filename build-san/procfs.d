build-san/procfs.o: src/procfs.c src/procfs.h src/util.h
src/procfs.h:
src/util.h:
