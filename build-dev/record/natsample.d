build-dev/record/natsample.o: src/record/natsample.c \
 src/record/natsample.h src/cpython/native.h src/probe/evlist.h \
 src/base/util.h
src/record/natsample.h:
src/cpython/native.h:
src/probe/evlist.h:
src/base/util.h:
