/* The report's HTML: one self-contained page (inline CSS, no scripts, no external
 * resources), written in order to a FILE. */
#ifndef CT_REPORT_HTML_H
#define CT_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

/* Writes s[0..n) (n = (size_t)-1: up to the NUL) with &, <, >, " and ' escaped. Control
 * characters, which XML forbids, become U+FFFD, except newline (shown as U+21B5) and tab
 * (a space), so decoded token text of any kind stays well-formed. */
void ct_html_escape(FILE *f, const char *s, size_t n);

/* <!DOCTYPE html>, head with the style sheet and `title`, and the opening of <body>. */
void ct_html_begin(FILE *f, const char *title);
void ct_html_end(FILE *f);

/* <section id=ID><h2>TITLE</h2> ... </section> */
void ct_html_section_begin(FILE *f, const char *id, const char *title);
void ct_html_section_end(FILE *f);

/* The notice shown for a part whose data is not in the cache yet. */
void ct_html_missing(FILE *f, const char *what);

#endif
