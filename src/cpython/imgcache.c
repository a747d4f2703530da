/* imgcache.c - the analyses of a recording's interpreter files (see imgcache.h). */
#define _GNU_SOURCE
#include "cpython/imgcache.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define CACHE_SLOTS 16

struct gs_pyimage_cache {
	struct {
		dev_t dev;
		ino_t ino;
		off_t size;
		struct timespec mtime;
		struct gs_pyimage *img;
	} e[CACHE_SLOTS];
	unsigned n, next; /* entries used; the one replaced next when full */
};

struct gs_pyimage_cache *gs_pyimage_cache_new(void) { return gs_calloc(1, sizeof(struct gs_pyimage_cache)); }

void gs_pyimage_cache_free(struct gs_pyimage_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->e[i].img);
	free(c);
}

static int same_file(const struct gs_pyimage_cache *c, unsigned i, const struct stat *st)
{
	return c->e[i].dev == st->st_dev && c->e[i].ino == st->st_ino && c->e[i].size == st->st_size &&
	       c->e[i].mtime.tv_sec == st->st_mtim.tv_sec && c->e[i].mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static int cache_get(const struct gs_pyimage_cache *c, const struct stat *st, const char *file, const char *path,
		     struct gs_pyimage *img)
{
	for (unsigned i = 0; c && i < c->n; i++)
		if (same_file(c, i, st)) {
			*img = *c->e[i].img;
			snprintf(img->file, sizeof(img->file), "%s", file);
			snprintf(img->path, sizeof(img->path), "%s", path);
			return 0;
		}
	return -ENOENT;
}

static void cache_put(struct gs_pyimage_cache *c, const struct stat *st, const struct gs_pyimage *img)
{
	unsigned i;
	if (!c)
		return;
	if (c->n < CACHE_SLOTS) {
		i = c->n++;
		c->e[i].img = gs_malloc(sizeof(*img));
	} else {
		i = c->next;
		c->next = (c->next + 1) % CACHE_SLOTS;
	}
	c->e[i].dev = st->st_dev;
	c->e[i].ino = st->st_ino;
	c->e[i].size = st->st_size;
	c->e[i].mtime = st->st_mtim;
	*c->e[i].img = *img;
}

int gs_pyimage_cache_analyse(struct gs_pyimage_cache *c, int fd, const char *file, const char *path,
			     struct gs_pyimage *img, char *why, size_t whylen)
{
	struct stat st;
	int have_st = fstat(fd, &st) == 0, err;
	if (have_st && cache_get(c, &st, file, path, img) == 0)
		return 0;
	err = gs_pyimage_analyse_as(file, path, img, why, whylen);
	if (err == 0 && have_st)
		cache_put(c, &st, img);
	return err;
}
