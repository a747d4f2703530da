build-san/record.o: src/record.c src/record.h src/analysis.h \
 src/recfile.h src/elfsym.h src/html.h src/inline.h src/python.h \
 src/pylayout.h src/perfev.h src/procfs.h src/pystack.h src/report.h \
 src/tracefs.h src/util.h src/x86.h
src/record.h:
src/analysis.h:
src/recfile.h:
src/elfsym.h:
src/html.h:
src/inline.h:
src/python.h:
src/pylayout.h:
src/perfev.h:
src/procfs.h:
src/pystack.h:
src/report.h:
src/tracefs.h:
src/util.h:
src/x86.h:
