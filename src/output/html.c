/* html.c - the HTML report. The state slices are streamed to a temporary file while the
 * recording goes through the analysis (memory bounded by the number of threads), then copied
 * into the page as one flat array [thread, start, duration, kind, ...] that the page's script
 * splits per thread. The timeline draws only the slices in view, and at most one per pixel
 * column and thread when zoomed out (holding the GIL wins over other states in a column), so it
 * stays smooth with many threads and millions of state changes. */
#define _GNU_SOURCE
#include "output/html.h"
#include "analysis/analysis.h"
#include "output/flame.h"
#include "output/report.h"
#include "output/states.h"
#include "base/escape.h"
#include "base/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct pending {
	int valid;
	enum gs_slice kind;
	uint64_t start, end;
};

struct html_ctx {
	FILE *tmp;
	const struct gs_analysis *a;
	struct pending *p;
	size_t cap;
	uint64_t nslices;
};

static void flush_slice(struct html_ctx *h, size_t ti, const struct pending *s)
{
	uint64_t st, d;
	if (s->kind == GS_SLICE_UNKNOWN || s->end <= s->start)
		return;
	st = s->start > h->a->start_ns ? s->start - h->a->start_ns : 0;
	d = s->end - s->start;
	fprintf(h->tmp, "%zu,%" PRIu64 ".%03" PRIu64 ",%" PRIu64 ".%03" PRIu64 ",%d,\n", ti, st / 1000, st % 1000,
		d / 1000, d % 1000, (int)s->kind);
	h->nslices++;
}

static void on_slice(void *ctx, const struct gs_thread *t, enum gs_slice kind, uint64_t start, uint64_t end)
{
	struct html_ctx *h = ctx;
	size_t i = (size_t)(t - h->a->threads);
	struct pending *s;
	if (i >= h->cap) {
		size_t ncap = h->cap ? h->cap : 64;
		while (ncap <= i)
			ncap *= 2;
		h->p = gs_realloc_array(h->p, ncap, sizeof(*h->p));
		memset(h->p + h->cap, 0, (ncap - h->cap) * sizeof(*h->p));
		h->cap = ncap;
	}
	s = &h->p[i];
	if (s->valid && s->kind == kind && s->end == start) {
		s->end = end;
		return;
	}
	if (s->valid)
		flush_slice(h, i, s);
	s->valid = 1;
	s->kind = kind;
	s->start = start;
	s->end = end;
}

static void flame_frame(FILE *out, const struct gs_analysis *a, enum gs_stack_what what, const char *title)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return;
	gs_flame_svg(a, m, what, title);
	fclose(m);
	fputs("<iframe class=\"flame\" srcdoc=\"", out);
	gs_esc_html(out, buf);
	fputs("\"></iframe>\n", out);
	free(buf);
}

static const char css[] =
	"body{font-family:sans-serif;margin:16px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
	"table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid "
	"#ddd;text-align:right}"
	"td:nth-child(2),th:nth-child(2){text-align:left}#tl{border:1px solid #ccc;cursor:grab;display:block}"
	"#tip{position:fixed;background:#ffe;border:1px solid #999;padding:4px "
	"6px;font-size:12px;pointer-events:none;display:none}"
	".legend span{display:inline-block;margin-right:14px;font-size:12px}.legend "
	"i{display:inline-block;width:12px;height:12px;"
	"margin-right:4px;vertical-align:middle}pre{font-size:12px;background:#f7f7f7;padding:8px;overflow:auto}"
	"iframe.flame{width:100%;height:420px;border:1px solid #ddd}";

/* The state table as the page's script uses it, indexed by slice kind: KIND (descriptions),
 * COL (colours), PRI (which state wins a shared pixel column). */
static void js_states(FILE *out)
{
	static const char *const arrays[3] = { "KIND", "COL", "PRI" };
	for (int k = 0; k < 3; k++) {
		fprintf(out, "const %s=[", arrays[k]);
		for (int i = 0; gs_state_style((enum gs_slice)i)->name; i++) {
			const struct gs_state_style *st = gs_state_style((enum gs_slice)i);
			if (k == 2)
				fprintf(out, "%s%d", i ? "," : "", st->priority);
			else /* constants without quotes or backslashes */
				fprintf(out, "%s'%s'", i ? "," : "", k ? st->colour : st->description);
		}
		fputs("];\n", out);
	}
}

static const char js[] =
	"const rows=T.map(()=>({s:[],d:[],k:[]}));\n"
	"for(let i=0;i<S.length;i+=4){const "
	"r=rows[S[i]];if(!r)continue;r.s.push(S[i+1]);r.d.push(S[i+2]);r.k.push(S[i+3]);}\n"
	"const order=T.map((t,i)=>i).filter(i=>rows[i].s.length);\n"
	"const cv=document.getElementById('tl'),cx=cv.getContext('2d'),tip=document.getElementById('tip');\n"
	"const LW=190,RH=18,TOP=22;let v0=0,v1=Math.max(1,META.duration_us),drag=null;\n"
	"function size(){cv.width=Math.max(600,window.innerWidth-40);cv.height=TOP+order.length*RH+4;}\n"
	"function lower(a,x){let lo=0,hi=a.length;while(lo<hi){const m=(lo+hi)>>1;if(a[m]<x)lo=m+1;else hi=m;}return "
	"lo;}\n"
	"function draw(){const W=cv.width-LW,sc=W/(v1-v0);cx.clearRect(0,0,cv.width,cv.height);cx.font='11px "
	"sans-serif';\n"
	" cx.fillStyle='#444';for(let k=0;k<=10;k++){const t=v0+(v1-v0)*k/10;cx.fillText((t/1000).toFixed(2)+' "
	"ms',LW+k*W/10-20,12);}\n"
	" let drawn=0;order.forEach((ti,row)=>{const "
	"r=rows[ti],y=TOP+row*RH;cx.fillStyle='#222';cx.fillText(T[ti].label,4,y+13);\n"
	"  let i=Math.max(0,lower(r.s,v0)-1),lastX=-1,lastK=-1;\n"
	"  for(;i<r.s.length&&r.s[i]<v1;i++){if(r.s[i]+r.d[i]<v0)continue;let x=LW+(r.s[i]-v0)*sc,w=r.d[i]*sc;\n"
	"   if(x<LW){w-=LW-x;x=LW;}const px=Math.floor(x);\n"
	"   if(w<1){if(px===lastX&&PRI[r.k[i]]<=PRI[lastK])continue;w=1;}\n"
	"   cx.fillStyle=COL[r.k[i]];cx.fillRect(x,y+2,w,RH-4);lastX=px;lastK=r.k[i];drawn++;}});\n"
	" cv.dataset.rows=order.length;cv.dataset.drawn=drawn;}\n"
	"cv.addEventListener('wheel',e=>{e.preventDefault();const W=cv.width-LW,x=e.offsetX-LW;if(x<0)return;\n"
	" const t=v0+(v1-v0)*x/W,f=e.deltaY<0?0.8:1.25;let n0=t-(t-v0)*f,n1=t+(v1-t)*f;if(n1-n0<0.001)return;\n"
	" v0=Math.max(0,n0);v1=Math.min(META.duration_us,n1);if(v1<=v0)v1=v0+0.001;draw();},{passive:false});\n"
	"cv.addEventListener('mousedown',e=>{drag={x:e.clientX,v0:v0,v1:v1};cv.style.cursor='grabbing';});\n"
	"window.addEventListener('mouseup',()=>{drag=null;cv.style.cursor='grab';});\n"
	"window.addEventListener('mousemove',e=>{if(drag){const "
	"W=cv.width-LW,dt=(e.clientX-drag.x)*(drag.v1-drag.v0)/W;\n"
	"  let "
	"n0=drag.v0-dt,n1=drag.v1-dt;if(n0<0){n1-=n0;n0=0;}if(n1>META.duration_us){n0-=n1-META.duration_us;n1=META."
	"duration_us;}\n"
	"  v0=Math.max(0,n0);v1=n1;draw();return;}\n"
	" const rc=cv.getBoundingClientRect(),x=e.clientX-rc.left,y=e.clientY-rc.top,row=Math.floor((y-TOP)/RH);\n"
	" if(e.target!==cv||x<LW||row<0||row>=order.length){tip.style.display='none';return;}\n"
	" const r=rows[order[row]],t=v0+(v1-v0)*(x-LW)/(cv.width-LW);let "
	"i=lower(r.s,t);if(i>0&&(i>=r.s.length||r.s[i]>t))i--;\n"
	" if(i<0||i>=r.s.length||r.s[i]>t||r.s[i]+r.d[i]<t){tip.style.display='none';return;}\n"
	" const b=document.createElement('b');b.textContent=T[order[row]].label+' (TID '+T[order[row]].tid+')';\n"
	" tip.replaceChildren(b,document.createElement('br'),KIND[r.k[i]],document.createElement('br'),'from "
	"'+(r.s[i]/1000).toFixed(3)+\n"
	"  ' ms for '+(r.d[i]>=1000?(r.d[i]/1000).toFixed(3)+' ms':r.d[i].toFixed(3)+' us'));\n"
	" tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';tip.style.display='block';});\n"
	"document.getElementById('reset').onclick=()=>{v0=0;v1=META.duration_us;draw();};\n"
	"document.getElementById('legend').innerHTML=KIND.map((k,i)=>'<span><i "
	"style=\"background:'+COL[i]+'\"></i>'+k+'</span>').join('');\n"
	"window.addEventListener('resize',()=>{size();draw();});size();draw();\n";

int gs_html_report(const char *path, const struct gs_analysis_opts *opts, FILE *out, char *why, size_t whylen)
{
	struct gs_analysis a;
	struct html_ctx h = { .a = &a };
	struct gs_hooks hooks = { .ctx = &h, .slice = on_slice };
	char *rep = NULL;
	size_t replen = 0, n;
	char buf[65536];
	FILE *m;
	int err;

	h.tmp = tmpfile();
	if (!h.tmp) {
		err = -errno;
		snprintf(why, whylen, "cannot create a temporary file: %s", strerror(-err));
		return err;
	}
	/* the start time is known once the header is read: the analysis keeps it */
	err = gs_analysis_load_hooked(&a, path, opts, &hooks, why, whylen);
	if (err < 0) {
		fclose(h.tmp);
		free(h.p);
		return err;
	}
	for (size_t i = 0; i < h.cap; i++)
		if (h.p[i].valid)
			flush_slice(&h, i, &h.p[i]);

	fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gilscope: ", out);
	gs_esc_html(out, a.command);
	fprintf(out, "</title><style>%s</style></head><body>\n<h1>gilscope report</h1>\n<p>", css);
	gs_esc_html(out, a.command);
	fprintf(out, " &middot; %.3f s recorded &middot; lost events: %" PRIu64 "%s</p>\n",
		(double)(a.end_ns - a.start_ns) / 1e9, a.lost_events,
		a.complete ? "" : " &middot; recording incomplete");
	/* the text summary, as the terminal shows it */
	m = open_memstream(&rep, &replen);
	if (m) {
		gs_report_text(&a, m);
		fclose(m);
		fputs("<h2>Summary</h2><pre>", out);
		gs_esc_html(out, rep);
		fputs("</pre>\n", out);
		free(rep);
		rep = NULL;
	}
	fputs("<h2>Timeline</h2><div class=\"legend\" id=\"legend\"></div>"
	      "<p style=\"font-size:12px\">Wheel: zoom, drag: pan, hover: details. <button "
	      "id=\"reset\">Reset</button></p>"
	      "<canvas id=\"tl\"></canvas><div id=\"tip\"></div>\n",
	      out);
	m = open_memstream(&rep, &replen);
	if (m) {
		gs_report_blame(&a, m, 5);
		fclose(m);
		fputs("<h2>Who held the GIL while each thread waited</h2><pre>", out);
		gs_esc_html(out, rep);
		fputs("</pre>\n", out);
		free(rep);
	}
	if (a.stack_samples) {
		fputs("<h2>Flame graphs (Python stacks)</h2>\n", out);
		flame_frame(out, &a, GS_WHAT_BLOCKING, "holding the GIL while other threads waited");
		flame_frame(out, &a, GS_WHAT_WAIT, "waiting for the GIL");
		flame_frame(out, &a, GS_WHAT_HOLD, "holding the GIL");
		flame_frame(out, &a, GS_WHAT_NOGIL, "running without the GIL");
	}
	fprintf(out, "<script>\nconst META={\"duration_us\": %.3f};\nconst T=[", (double)(a.end_ns - a.start_ns) / 1e3);
	for (size_t i = 0; i < a.nthreads; i++) {
		const struct gs_thread *t = &a.threads[i];
		char name[41], label[80];
		/* at most 40 bytes, whole characters, controls and bidi overrides made visible as in
		 * the summary (the canvas draws it and the tooltip shows it) */
		gs_esc_term_buf(name, sizeof(name), gs_thread_name(&a, t));
		snprintf(label, sizeof(label), "%s%s %u", t->is_main ? "* " : "", name, t->tid);
		fprintf(out, "%s{\"tid\": %u, \"label\": ", i ? "," : "", t->tid);
		gs_esc_json_script(out, label);
		fputs("}", out);
	}
	fputs("];\nconst S=[\n", out);
	rewind(h.tmp);
	while ((n = fread(buf, 1, sizeof(buf), h.tmp)) > 0)
		fwrite(buf, 1, n, out);
	fputs("];\n", out);
	js_states(out);
	fprintf(out, "%s</script>\n</body></html>\n", js);
	fclose(h.tmp);
	free(h.p);
	gs_analysis_free(&a);
	return 0;
}
