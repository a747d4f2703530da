build-san/tests/test_formats: tests/unit/test_formats.c src/procfs.h \
 src/recfile.h src/tracefs.h
src/procfs.h:
src/recfile.h:
src/tracefs.h:
