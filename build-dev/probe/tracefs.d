build-dev/probe/tracefs.o: src/probe/tracefs.c src/probe/tracefs.h \
 src/base/util.h
src/probe/tracefs.h:
src/base/util.h:
