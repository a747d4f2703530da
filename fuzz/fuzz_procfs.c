/* fuzz_procfs.c - the /proc text parsers of procfs.c: each line through gs_maps_parse_line
 * (a maps line: addresses, device, inode, a path that may hold blanks and end in " (deleted)"),
 * and the whole input through gs_nspid_parse (a status file's NSpid line). A process can choose
 * its mapped files' names and its own comm, so both are hostile. */
#include "fuzz.h"

#include "base/procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct gs_map *m = malloc(sizeof(*m));
	uint32_t ids[4];
	int n;
	if (!text || !m)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	n = gs_nspid_parse(text, ids, 4);
	if (n == 0 || n > 4)
		abort(); /* -1, or 1 to max */
	for (int i = 0; i < n; i++)
		if (ids[i] == 0 || ids[i] > 0x7fffffff)
			abort();
	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (gs_maps_parse_line(line, m) == 0 &&
		    (m->end < m->start || strnlen(m->path, sizeof(m->path)) == sizeof(m->path)))
			abort();
	}
	free(m);
	free(text);
	return 0;
}
