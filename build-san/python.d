build-san/python.o: src/python.c src/python.h src/pylayout.h src/elfsym.h \
 src/procfs.h src/util.h src/x86.h
src/python.h:
src/pylayout.h:
src/elfsym.h:
src/procfs.h:
src/util.h:
src/x86.h:
