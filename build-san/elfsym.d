build-san/elfsym.o: src/elfsym.c src/elfsym.h src/util.h
src/elfsym.h:
src/util.h:
