build-san/inline.o: src/inline.c src/inline.h src/python.h src/pylayout.h \
 src/procfs.h src/util.h src/x86.h
src/inline.h:
src/python.h:
src/pylayout.h:
src/procfs.h:
src/util.h:
src/x86.h:
