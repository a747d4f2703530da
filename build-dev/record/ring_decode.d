build-dev/record/ring_decode.o: src/record/ring_decode.c \
 src/record/ring_decode.h src/base/recfile.h
src/record/ring_decode.h:
src/base/recfile.h:
