build-san/tests/test_elf_sources: tests/unit/test_elf_sources.c \
 src/elfsym.h
src/elfsym.h:
