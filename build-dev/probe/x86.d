build-dev/probe/x86.o: src/probe/x86.c src/probe/x86.h src/base/procfs.h
src/probe/x86.h:
src/base/procfs.h:
