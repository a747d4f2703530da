/* imgcache.h - the analyses of a recording's interpreter files, each file analysed once.
 *
 * A process tree starts the same interpreter many times (a shell loop, a Pool's workers): the
 * analysis of its ELF file (cpython/python.h, gs_pyimage: take_gil, the GIL stores, the layout;
 * about 10 ms for a stripped build) is kept by the file's device, inode, size and modification
 * time, at most 16 files (the oldest replaced). A hit copies the analysis and names the file as
 * this process reaches it (gs_pyimage's path and file). Opaque; gs_pyimage_cache_free(NULL) and
 * a NULL cache (nothing kept, nothing found) are allowed.
 */
#ifndef GS_IMGCACHE_H
#define GS_IMGCACHE_H

#include <stddef.h>

#include "cpython/python.h"

struct gs_pyimage_cache;

struct gs_pyimage_cache *gs_pyimage_cache_new(void);
void gs_pyimage_cache_free(struct gs_pyimage_cache *c);
/* gs_pyimage_analyse_as(file, path, img, why, whylen) for the file open at fd, from the cache when
 * the same file was analysed before; a successful analysis is kept. */
int gs_pyimage_cache_analyse(struct gs_pyimage_cache *c, int fd, const char *file, const char *path,
			     struct gs_pyimage *img, char *why, size_t whylen);

#endif
