build-dev/cpython/pylayout.o: src/cpython/pylayout.c \
 src/cpython/pylayout.h
src/cpython/pylayout.h:
