/* html_page.h - the fixed parts of the HTML page (html.c): its style sheet and its one script.
 *
 * Contract: the script takes all its data from a `<script type="application/json" id="gs-data">`
 * element that html.c writes (its keys are listed there) and inserts every string of it with
 * textContent, createTextNode or canvas fillText, never as markup; it sets body[data-ready] when
 * the page is built. Both texts are constants, so the page's Content-Security-Policy allows the
 * script by its SHA-256 hash and nothing else runs. Elements it fills: #sub, #verdict, #legend,
 * #threads (a table: a tbody per process, tr.thread rows with data-tid, sortable headers),
 * #tl (the timeline canvas: data-rows, data-drawn, data-sel), #tip, #reset, #blame, #holds,
 * #flames (a canvas per kind with data-kind and data-depth), #fsearch, #theme. */
#ifndef GS_HTML_PAGE_H
#define GS_HTML_PAGE_H

extern const char gs_html_css[];
extern const char gs_html_js[];

#endif
