build-dev/cmd/main.o: src/cmd/main.c src/cmd/cmd.h \
 src/analysis/analysis.h src/base/recfile.h src/output/flame.h \
 src/output/trace.h src/output/html.h src/output/perfetto.h \
 src/import/perfscript.h src/import/offgil.h src/output/report.h \
 src/base/util.h
src/cmd/cmd.h:
src/analysis/analysis.h:
src/base/recfile.h:
src/output/flame.h:
src/output/trace.h:
src/output/html.h:
src/output/perfetto.h:
src/import/perfscript.h:
src/import/offgil.h:
src/output/report.h:
src/base/util.h:
