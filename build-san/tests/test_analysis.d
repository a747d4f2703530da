build-san/tests/test_analysis: tests/unit/test_analysis.c src/analysis.h \
 src/recfile.h
src/analysis.h:
src/recfile.h:
