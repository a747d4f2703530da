/* exekind.c - is the program a process runs CPython? (see exekind.h) */
#define _GNU_SOURCE
#include "record/exekind.h"
#include "cpython/elfsym.h"

#include <stdio.h>
#include <sys/stat.h>

int gs_exekind_python(struct gs_exekind *k, pid_t pid, uint64_t *dev, uint64_t *ino)
{
	char exe[64];
	struct gs_elf *e;
	struct stat st;
	uint64_t a, s;
	int yes;
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	if (stat(exe, &st) < 0)
		return -1;
	if (dev)
		*dev = (uint64_t)st.st_dev;
	if (ino)
		*ino = (uint64_t)st.st_ino;
	for (size_t i = 0; i < k->n; i++)
		if (k->e[i].dev == (uint64_t)st.st_dev && k->e[i].ino == (uint64_t)st.st_ino)
			return k->e[i].python;
	if (gs_elf_open(exe, &e) < 0)
		return -1;
	yes = gs_elf_dynsym(e, "_PyRuntime", &a, &s) == 0 || gs_elf_symbol(e, "_PyRuntime", &a, &s) == 0 ||
	      gs_elf_needs(e, "libpython");
	gs_elf_free(e);
	if (k->n < GS_EXEKIND_MAX) {
		k->e[k->n].dev = (uint64_t)st.st_dev;
		k->e[k->n].ino = (uint64_t)st.st_ino;
		k->e[k->n++].python = yes;
	}
	return yes;
}
