/* flame.c - flame graph as SVG. The stacks of one kind are merged into a tree (root at the
 * bottom, callees above), each node a rectangle as wide as its share of the samples. A small
 * script makes it interactive: hover for details, click to zoom on a frame, Ctrl-F or the
 * Search button to highlight frames matching a regular expression, Reset to zoom out. */
#define _GNU_SOURCE
#include "output/flame.h"
#include "base/escape.h"
#include "base/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct node {
	uint32_t frame; /* 0: the root */
	uint64_t samples;
	struct node *child, *next;
};

static struct node *child_of(struct node *n, uint32_t frame)
{
	struct node *c;
	for (c = n->child; c; c = c->next)
		if (c->frame == frame)
			return c;
	c = gs_calloc(1, sizeof(*c));
	c->frame = frame;
	c->next = n->child;
	n->child = c;
	return c;
}

static void free_tree(struct node *n)
{
	while (n) {
		struct node *next = n->next;
		free_tree(n->child);
		free(n);
		n = next;
	}
}

static int depth_of(const struct node *n)
{
	int d = 0;
	for (const struct node *c = n->child; c; c = c->next) {
		int k = depth_of(c);
		if (k > d)
			d = k;
	}
	return d + 1;
}

#define WIDTH 1200.0
#define ROW 17
#define TOP 60

/* warm colours, stable per name */
static void colour(const char *name, char *buf, size_t len)
{
	unsigned h = 2166136261u;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(buf, len, "rgb(%u,%u,%u)", 205 + h % 50, 80 + (h >> 8) % 130, 40 + (h >> 16) % 50);
}

static void draw(const struct gs_analysis *a, FILE *out, const struct node *n, double x, int depth, int height,
		 uint64_t total)
{
	double w = WIDTH * (double)n->samples / (double)total, cx = x;
	if (w < 0.1)
		return;
	if (n->frame || depth == 0) {
		char name[700], fill[32];
		double y = TOP + (double)(height - depth - 1) * ROW;
		if (n->frame)
			gs_analysis_frame_name(a, n->frame, name, sizeof(name));
		else
			snprintf(name, sizeof(name), "all");
		colour(name, fill, sizeof(fill));
		fprintf(out, "<g class=\"f\" data-x=\"%.4f\" data-w=\"%.4f\"><title>", x, w);
		gs_esc_svg(out, name);
		fprintf(out,
			" (%" PRIu64 " samples, %.2f%%)</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
			"height=\"%d\" fill=\"%s\"/>"
			"<text x=\"%.2f\" y=\"%.1f\"></text></g>\n",
			n->samples, 100.0 * (double)n->samples / (double)total, x, y, w, ROW - 1, fill, x + 3,
			y + ROW - 5);
	}
	for (const struct node *c = n->child; c; c = c->next) {
		draw(a, out, c, cx, depth + 1, height, total);
		cx += WIDTH * (double)c->samples / (double)total;
	}
}

static const char script[] =
	"<script type=\"text/ecmascript\"><![CDATA[\n"
	"var W=1200, frames=[].slice.call(document.querySelectorAll('g.f'));\n"
	"function label(g){var "
	"r=g.querySelector('rect'),t=g.querySelector('text'),n=g.querySelector('title').textContent;\n"
	" var w=+r.getAttribute('width'), c=Math.floor((w-6)/7);\n"
	" t.textContent = c<3 ? '' : (n.length>c ? n.substring(0,c-2)+'..' : n);}\n"
	"function place(x0,w0){frames.forEach(function(g){var "
	"x=+g.dataset.x,w=+g.dataset.w,r=g.querySelector('rect'),t=g.querySelector('text');\n"
	" if(x+w<=x0+1e-6||x>=x0+w0-1e-6){g.style.display='none';return;} g.style.display='';\n"
	" var nx=(x-x0)*W/w0, nw=w*W/w0; if(nx<0){nw+=nx;nx=0;} if(nx+nw>W)nw=W-nx;\n"
	" r.setAttribute('x',nx); r.setAttribute('width',nw); t.setAttribute('x',nx+3); label(g);});}\n"
	"frames.forEach(function(g){label(g); g.onclick=function(){place(+g.dataset.x,+g.dataset.w);\n"
	" document.getElementById('reset').style.display='';};\n"
	" g.onmouseover=function(){document.getElementById('details').textContent=g.querySelector('title').textContent;"
	"};});\n"
	"function reset(){place(0,W); document.getElementById('reset').style.display='none';}\n"
	"function search(){var re=prompt('Search (regular expression)'); if(re===null)return; var rx; try{rx=new "
	"RegExp(re);}catch(e){return;}\n"
	" var hit=0, tot=0; frames.forEach(function(g){var "
	"n=g.querySelector('title').textContent,r=g.querySelector('rect');\n"
	"  if(!r.dataset.fill)r.dataset.fill=r.getAttribute('fill');\n"
	"  "
	"if(re&&rx.test(n)){r.setAttribute('fill','rgb(230,0,230)');}else{r.setAttribute('fill',r.dataset.fill);}});\n"
	" document.getElementById('matched').textContent = re ? 'matched: '+re : '';}\n"
	"document.addEventListener('keydown',function(e){if(e.key=='f'&&(e.ctrlKey||e.metaKey)){e.preventDefault();"
	"search();}});\n"
	"]]></script>\n";

/* Each frame id's stand-in: the first id whose name (gs_analysis_frame_name) is the same. Frame
 * ids are per process (a code object's address), so the same function of the same script in two
 * processes has two ids; a tree keyed by id would draw it twice side by side. The table is
 * indexed by id (0 and ids past the definitions stay themselves); found by a hash of the name,
 * open addressing over ids, grown once to over twice the frames. */
static uint32_t *frame_canon(const struct gs_analysis *a)
{
	size_t cap = 16, nids = a->nframes + 1;
	uint32_t *canon = gs_malloc(nids * sizeof(*canon)), *slot;
	uint64_t *hash;
	while (cap < 2 * nids)
		cap *= 2;
	slot = gs_calloc(cap, sizeof(*slot));
	hash = gs_calloc(cap, sizeof(*hash));
	canon[0] = 0;
	for (uint32_t id = 1; id < nids; id++) {
		char name[700], other[700];
		uint64_t h;
		size_t i;
		gs_analysis_frame_name(a, id, name, sizeof(name));
		h = gs_fnv1a(GS_FNV1A_INIT, name);
		for (i = (size_t)h & (cap - 1); slot[i]; i = (i + 1) & (cap - 1)) {
			if (hash[i] != h)
				continue;
			gs_analysis_frame_name(a, slot[i], other, sizeof(other));
			if (strcmp(name, other) == 0)
				break;
		}
		if (!slot[i]) {
			slot[i] = id;
			hash[i] = h;
		}
		canon[id] = slot[i];
	}
	free(slot);
	free(hash);
	return canon;
}

/* The tree of the samples of one kind, all threads: the root's children are outermost frames,
 * frames of the same name one node (frame_canon). */
static void build(const struct gs_analysis *a, enum gs_stack_what what, struct node *root)
{
	uint32_t *canon = frame_canon(a);
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		const uint32_t *f;
		struct node *n = root;
		int nf = 0;
		if (!c->amount || c->what != (uint32_t)what || c->tid != 0)
			continue;
		root->samples += c->amount;
		f = gs_analysis_stack(a, c->stack, &nf);
		for (int k = nf - 1; f && k >= 0; k--) {
			n = child_of(n, f[k] <= a->nframes ? canon[f[k]] : f[k]);
			n->samples += c->amount;
		}
	}
	free(canon);
}

/* Folded lines told apart by their text: the distinct lines in order of first sight, each text
 * (NUL-terminated) in one growing buffer, found by its hash in an index of line numbers + 1. */
struct folds {
	struct fold {
		uint64_t hash, amount;
		size_t off;
	} * v;
	size_t n, cap;
	uint32_t *slot; /* line + 1, 0: free */
	size_t nslot;   /* a power of two, kept over twice n */
	char *text;
	size_t len, size;
};

static void folds_put(struct folds *f, const char *s)
{
	size_t l = strlen(s);
	if (f->len + l + 1 > f->size) {
		f->size = (f->len + l + 1) * 2;
		f->text = gs_realloc_array(f->text, f->size, 1);
	}
	memcpy(f->text + f->len, s, l + 1);
	f->len += l;
}

/* The text from off to the end of the buffer is one line: its count goes up by amount, and the
 * text is dropped when the line was seen before. */
static void folds_add(struct folds *f, size_t off, uint64_t amount)
{
	uint64_t h = gs_fnv1a(GS_FNV1A_INIT, f->text + off);
	size_t i;
	if (2 * (f->n + 1) > f->nslot) {
		f->nslot = f->nslot ? 2 * f->nslot : 256;
		free(f->slot);
		f->slot = gs_calloc(f->nslot, sizeof(*f->slot));
		for (size_t k = 0; k < f->n; k++) {
			for (i = (size_t)f->v[k].hash & (f->nslot - 1); f->slot[i]; i = (i + 1) & (f->nslot - 1))
				;
			f->slot[i] = (uint32_t)(k + 1);
		}
	}
	for (i = (size_t)h & (f->nslot - 1); f->slot[i]; i = (i + 1) & (f->nslot - 1)) {
		struct fold *o = &f->v[f->slot[i] - 1];
		if (o->hash == h && strcmp(f->text + o->off, f->text + off) == 0) {
			o->amount += amount;
			f->len = off; /* seen: its text goes */
			return;
		}
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->v = gs_realloc_array(f->v, f->cap, sizeof(*f->v));
	}
	f->v[f->n] = (struct fold){ .hash = h, .amount = amount, .off = off };
	f->slot[i] = (uint32_t)++f->n;
	f->len++; /* keeps its NUL */
}

size_t gs_flame_folded(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, uint64_t scale)
{
	struct folds f = { 0 };
	size_t lines;
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		size_t off = f.len;
		int n = 0;
		const uint32_t *fr;
		if (!c->amount || c->what != (uint32_t)what || c->tid != 0)
			continue;
		fr = gs_analysis_stack(a, c->stack, &n);
		if (!fr) /* a line is never empty (folds_add needs its text): a stack is never empty */
			folds_put(&f, "[no Python frame]");
		for (int k = n - 1; fr && k >= 0; k--) {
			char name[600], vis[4 * sizeof(name)];
			gs_analysis_frame_name(a, fr[k], name, sizeof(name));
			gs_esc_term_buf(vis, sizeof(vis), name); /* no control character or newline is left */
			for (char *p = vis; *p; p++)
				if (*p == ';')
					*p = ',';
			folds_put(&f, vis);
			folds_put(&f, k ? ";" : "");
		}
		folds_add(&f, off, c->amount);
	}
	for (size_t k = 0; k < f.n; k++)
		fprintf(out, "%s %" PRIu64 "\n", f.text + f.v[k].off, f.v[k].amount * scale);
	lines = f.n;
	free(f.v);
	free(f.slot);
	free(f.text);
	return lines;
}

static void json_node(FILE *out, const struct node *n, uint64_t min)
{
	fprintf(out, "[%u,%" PRIu64, n->frame, n->samples);
	for (const struct node *c = n->child; c; c = c->next)
		if (c->samples >= min) {
			fputc(',', out);
			json_node(out, c, min);
		}
	fputc(']', out);
}

size_t gs_flame_json(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, uint64_t per)
{
	struct node root = { 0 };
	build(a, what, &root);
	json_node(out, &root, per ? (root.samples + per - 1) / per : 0);
	free_tree(root.child);
	return root.samples;
}

size_t gs_flame_svg(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, const char *title)
{
	struct node root = { 0 };
	int height;

	build(a, what, &root);
	height = depth_of(&root);
	fprintf(out,
		"<?xml version=\"1.0\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\" "
		"style=\"font-family:monospace;font-size:12px\">\n"
		"<style>g.f:hover rect{stroke:black;stroke-width:0.5;cursor:pointer} "
		"text{pointer-events:none}</style>\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"rgb(250,250,245)\"/>\n<text x=\"600\" y=\"22\" "
		"text-anchor=\"middle\" style=\"font-size:16px\">",
		(int)WIDTH, TOP + height * ROW + 30);
	gs_esc_svg(out, title);
	fprintf(out,
		"</text>\n<text x=\"10\" y=\"44\" id=\"reset\" style=\"display:none;cursor:pointer\" "
		"onclick=\"reset()\">[Reset zoom]</text>\n"
		"<text x=\"1100\" y=\"44\" style=\"cursor:pointer\" onclick=\"search()\">[Search]</text>\n"
		"<text x=\"800\" y=\"44\" id=\"matched\"></text>\n"
		"<text x=\"10\" y=\"%d\" id=\"details\">%" PRIu64 " samples%s</text>\n",
		TOP + height * ROW + 20, root.samples, root.samples ? "" : " (no Python stacks of this kind)");
	if (root.samples)
		draw(a, out, &root, 0, 0, height, root.samples);
	fputs(script, out);
	fputs("</svg>\n", out);
	free_tree(root.child);
	return root.samples;
}
