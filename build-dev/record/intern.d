build-dev/record/intern.o: src/record/intern.c src/record/intern.h \
 src/base/util.h
src/record/intern.h:
src/base/util.h:
