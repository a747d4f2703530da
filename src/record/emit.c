/* emit.c - the recorder's own records into the merge (see emit.h). */
#include "record/emit.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

void gs_emit_rec(const struct gs_emit *e, const struct gs_rec *r, const void *payload, size_t plen)
{
	gs_merge_add(e->merge, e->queue, r, payload, plen);
}

void gs_emit_meta(const struct gs_emit *e, uint32_t pid, const char *key, const char *value)
{
	gs_emit_meta_asof(e, pid, 0, key, value);
}

void gs_emit_meta_asof(const struct gs_emit *e, uint32_t pid, uint64_t asof, const char *key, const char *value)
{
	struct gs_rec r = { .type = GS_REC_META, .pid = pid, .time = gs_now_ns(), .arg64 = asof };
	size_t kl = strlen(key), vl = strlen(value);
	char *buf = gs_malloc(kl + vl + 2);
	memcpy(buf, key, kl + 1);
	memcpy(buf + kl + 1, value, vl + 1);
	gs_merge_add(e->merge, e->queue, &r, buf, kl + vl + 2);
	free(buf);
}

void gs_emit_meta_u64(const struct gs_emit *e, uint32_t pid, const char *key, uint64_t value)
{
	struct gs_rec r = { .type = GS_REC_META, .pid = pid, .arg = GS_META_U64, .time = gs_now_ns() };
	char buf[256];
	size_t n = gs_meta_u64_payload(buf, sizeof(buf), key, value);
	if (n)
		gs_merge_add(e->merge, e->queue, &r, buf, n);
}
