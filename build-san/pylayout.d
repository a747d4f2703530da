build-san/pylayout.o: src/pylayout.c src/pylayout.h
src/pylayout.h:
