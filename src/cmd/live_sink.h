/* live_sink.h - the live figures (analysis/live.h) as a recorder sink (record/sink.h): every
 * record the recorder delivers is fed to the gs_live as it comes; start() begins its analysis at
 * the recording's start, close() marks it ended. It never fails. Freed by gs_live_sink_free
 * (the gs_live stays its owner's). */
#ifndef GS_CMD_LIVE_SINK_H
#define GS_CMD_LIVE_SINK_H

#include "analysis/live.h"
#include "record/sink.h"

struct gs_sink *gs_live_sink_new(struct gs_live *l);
void gs_live_sink_free(struct gs_sink *s);

#endif
