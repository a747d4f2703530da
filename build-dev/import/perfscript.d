build-dev/import/perfscript.o: src/import/perfscript.c \
 src/import/perfscript.h src/base/recfile.h src/base/util.h
src/import/perfscript.h:
src/base/recfile.h:
src/base/util.h:
