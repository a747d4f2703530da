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

/* The tree of the samples of one kind, all threads: the root's children are outermost frames. */
static void build(const struct gs_analysis *a, enum gs_stack_what what, struct node *root)
{
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
			n = child_of(n, f[k]);
			n->samples += c->amount;
		}
	}
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
