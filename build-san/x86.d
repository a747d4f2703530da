build-san/x86.o: src/x86.c src/x86.h src/procfs.h
src/x86.h:
src/procfs.h:
