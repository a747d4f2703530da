/* perfetto.h - Perfetto's native protobuf trace (TrackEvent packets), streamed: tracks per
 * process and thread, state slices, GIL handover flows, switch requests, waiter counters. It
 * loads where multi-gigabyte JSON would not. */
#ifndef GS_PERFETTO_H
#define GS_PERFETTO_H

#include <stddef.h>
#include <stdio.h>

int gs_perfetto_export(const char *path, FILE *out, char *why, size_t whylen);

#endif
