build-dev/cmd/record.o: src/cmd/record.c src/cmd/cmd.h \
 src/analysis/analysis.h src/base/recfile.h src/base/util.h \
 src/output/html.h src/output/report.h src/record/recorder.h \
 src/record/sink.h
src/cmd/cmd.h:
src/analysis/analysis.h:
src/base/recfile.h:
src/base/util.h:
src/output/html.h:
src/output/report.h:
src/record/recorder.h:
src/record/sink.h:
