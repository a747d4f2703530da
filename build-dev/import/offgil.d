build-dev/import/offgil.o: src/import/offgil.c src/import/offgil.h \
 src/import/perfscript.h src/base/recfile.h src/base/util.h
src/import/offgil.h:
src/import/perfscript.h:
src/base/recfile.h:
src/base/util.h:
