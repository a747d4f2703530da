build-san/tests/test_layouts: tests/unit/test_layouts.c src/pylayout.h \
 src/python.h src/pylayout.h src/pystack.h src/python.h
src/pylayout.h:
src/python.h:
src/pylayout.h:
src/pystack.h:
src/python.h:
