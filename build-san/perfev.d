build-san/perfev.o: src/perfev.c src/perfev.h src/util.h
src/perfev.h:
src/util.h:
