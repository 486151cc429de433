/* HTML page helpers (report/html.h). */
#include "report/html.h"

#include <string.h>

void ct_html_escape(FILE *f, const char *s, size_t n)
{
    if (!s)
        return;
    if (n == (size_t)-1)
        n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        case '\n': fputs("\xe2\x86\xb5", f); break; /* ↵ */
        case '\t': fputc(' ', f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fputs("\xef\xbf\xbd", f); /* U+FFFD */
            else
                fputc(c, f);
        }
    }
}

/* Print-friendly, light, system fonts only (no network). */
static const char style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1a1a1a;"
    "background:#fafafa;line-height:1.45}\n"
    "header{background:#1f3b57;color:#fff;padding:18px 32px}header h1{margin:0;font-size:1.6em}\n"
    "header p{margin:4px 0 0;opacity:.85}\n"
    "nav{padding:8px 32px;background:#e8eef3;font-size:.9em}nav a{margin-right:14px;color:#1f3b57}\n"
    "main{padding:8px 32px 40px}\n"
    "section{background:#fff;border:1px solid #dde3e8;border-radius:6px;padding:8px 20px 16px;"
    "margin:18px 0}\n"
    "h2{color:#1f3b57;border-bottom:1px solid #dde3e8;padding-bottom:4px}h3{margin-bottom:4px}\n"
    "table{border-collapse:collapse;margin:8px 0;font-size:.88em}\n"
    "th,td{border:1px solid #d5dbe0;padding:3px 8px;text-align:right;vertical-align:top}\n"
    "th{background:#eef2f5}td.l,th.l{text-align:left}\n"
    "svg{display:block;margin:10px 0;background:#fff}\n"
    ".plots{display:flex;flex-wrap:wrap;gap:12px}\n"
    ".missing{color:#8a5a00;background:#fff6e0;border-left:4px solid #e0a100;padding:6px 10px}\n"
    ".ctx{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;font-size:.85em}\n"
    "mark{background:#ffd54f;padding:0 1px;border-radius:2px}\n"
    ".latent{border-top:1px dashed #c8d0d6;margin-top:14px}\n"
    "pre{background:#f4f6f8;padding:10px;overflow-x:auto;font-size:.82em}\n"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace}\n";

void ct_html_begin(FILE *f, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    ct_html_escape(f, title, (size_t)-1);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", style);
}

void ct_html_end(FILE *f) { fputs("</body>\n</html>\n", f); }

void ct_html_section_begin(FILE *f, const char *id, const char *title)
{
    fputs("<section id=\"", f);
    ct_html_escape(f, id, (size_t)-1);
    fputs("\">\n<h2>", f);
    ct_html_escape(f, title, (size_t)-1);
    fputs("</h2>\n", f);
}

void ct_html_section_end(FILE *f) { fputs("</section>\n", f); }

void ct_html_missing(FILE *f, const char *what)
{
    fputs("<p class=\"missing\">", f);
    ct_html_escape(f, what, (size_t)-1);
    fputs(": not computed yet.</p>\n", f);
}
