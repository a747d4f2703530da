build-dev/base/procfs.o: src/base/procfs.c src/base/procfs.h \
 src/base/util.h
src/base/procfs.h:
src/base/util.h:
