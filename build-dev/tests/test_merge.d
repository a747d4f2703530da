build-dev/tests/test_merge: tests/unit/test_merge.c src/record/intern.h \
 src/record/merge.h src/base/recfile.h
src/record/intern.h:
src/record/merge.h:
src/base/recfile.h:
