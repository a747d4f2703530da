build-dev/cpython/native.o: src/cpython/native.c src/cpython/native.h \
 src/base/util.h
src/cpython/native.h:
src/base/util.h:
