build-dev/cpython/elfsym.o: src/cpython/elfsym.c src/cpython/elfsym.h \
 src/base/util.h
src/cpython/elfsym.h:
src/base/util.h:
