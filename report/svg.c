/* SVG plots (report/svg.h). Coordinates are printed with one decimal, so output
 * bytes depend only on the data. */
#include "report/svg.h"
#include "common/error.h"
#include "report/html.h"

#include <stdint.h>
#include <string.h>

const char *ct_svg_color(size_t i)
{
    /* Okabe-Ito: distinguishable with the common colour-vision deficiencies */
    static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                          "#E69F00", "#56B4E9", "#000000", "#F0E442"};
    return palette[i % (sizeof palette / sizeof *palette)];
}

size_t ct_svg_ticks(double lo, double hi, int log_axis, double *out, size_t max)
{
    size_t n = 0;
    if (!isfinite(lo) || !isfinite(hi) || hi < lo || max == 0)
        return 0;
    if (log_axis) {
        if (lo <= 0)
            return 0;
        int k0 = (int)floor(log10(lo) + 1e-9), k1 = (int)ceil(log10(hi) - 1e-9);
        for (int k = k0; k <= k1 && n < max; k++) {
            double v = pow(10.0, k);
            if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
                out[n++] = v;
        }
        if (n < 2) { /* less than a decade: 1-2-5 within it */
            n = 0;
            static const double mult[3] = {1, 2, 5};
            for (int k = k0; k <= k1; k++)
                for (int m = 0; m < 3 && n < max; m++) {
                    double v = mult[m] * pow(10.0, k);
                    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
                        out[n++] = v;
                }
        }
        return n;
    }
    double span = hi - lo;
    if (span <= 0)
        span = fabs(lo) > 0 ? fabs(lo) : 1;
    double raw = span / 5, mag = pow(10.0, floor(log10(raw))), norm = raw / mag;
    double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    double first = ceil(lo / step - 1e-9);
    for (long i = 0; n < max; i++) {
        double v = (first + (double)i) * step;
        if (v > hi + step * 1e-9)
            break;
        out[n++] = fabs(v) < step * 1e-9 ? 0.0 : v;
    }
    return n;
}

void ct_svg_tick_label(double v, char *out, size_t n)
{
    static const struct {
        double unit;
        const char *suffix;
    } si[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
    double a = fabs(v);
    if (a >= 1e4) {
        for (size_t i = 0; i < sizeof si / sizeof *si; i++)
            if (a >= si[i].unit) {
                snprintf(out, n, "%.3g%s", v / si[i].unit, si[i].suffix);
                return;
            }
    }
    snprintf(out, n, "%.4g", a < 1e-12 ? 0.0 : v);
}

/* --- the frame shared by all plots --------------------------------------------------- */

typedef struct {
    double x0, x1, y0, y1; /* data range (log10 units on a log axis) */
    int xlog;
    double L, R, T, B; /* plot area in pixels */
} frame;

static double px(const frame *fr, double x)
{
    double v = fr->xlog ? log10(x) : x;
    return fr->L + (v - fr->x0) / (fr->x1 - fr->x0) * (fr->R - fr->L);
}

static double py(const frame *fr, double y) { return fr->B - (y - fr->y0) / (fr->y1 - fr->y0) * (fr->B - fr->T); }

static int usable(double v, int log_axis) { return isfinite(v) && (!log_axis || v > 0); }

/* Completes a range from the data: empty -> [0,1] (log: [1,10]), a point -> widened,
 * then rounded out to ticks (whole decades on a log axis). */
static void settle_range(double *lo, double *hi, double dlo, double dhi, int log_axis)
{
    double a = isfinite(*lo) ? *lo : dlo, b = isfinite(*hi) ? *hi : dhi;
    if (!isfinite(a) || !isfinite(b) || b < a) {
        a = log_axis ? 1 : 0;
        b = log_axis ? 10 : 1;
    }
    if (log_axis) {
        if (a <= 0)
            a = b > 0 ? b / 10 : 1;
        int auto_lo = !isfinite(*lo), auto_hi = !isfinite(*hi);
        if (auto_lo)
            a = pow(10.0, floor(log10(a) + 1e-9));
        if (auto_hi)
            b = pow(10.0, ceil(log10(b) - 1e-9));
        if (b <= a)
            b = a * 10;
    } else {
        if (b == a) {
            double w = fabs(a) > 0 ? fabs(a) * 0.1 : 0.5;
            a -= w;
            b += w;
        }
        double t[64];
        size_t n = ct_svg_ticks(a, b, 0, t, 64);
        if (n >= 2) {
            double step = t[1] - t[0];
            if (!isfinite(*lo))
                a = floor(a / step + 1e-9) * step;
            if (!isfinite(*hi))
                b = ceil(b / step - 1e-9) * step;
        }
    }
    *lo = a;
    *hi = b;
}

static void open_svg(FILE *f, const ct_svg_plot *p)
{
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
    if (p->id) {
        fputs(" id=\"", f);
        ct_html_escape(f, p->id, (size_t)-1);
        fputc('"', f);
    }
    fprintf(f, " class=\"plot\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\""
               " font-family=\"sans-serif\" font-size=\"12\" aria-label=\"",
            p->width, p->height, p->width, p->height);
    ct_html_escape(f, p->title ? p->title : "plot", (size_t)-1);
    fputs("\">\n<title>", f);
    ct_html_escape(f, p->title ? p->title : "plot", (size_t)-1);
    fputs("</title>\n", f);
    if (p->title) {
        /* A title wider than the plot (about 8 px a character in bold 14 px sans) is
         * squeezed to fit rather than cut off at the plot's edges. */
        double room = p->width - 16.0;
        fprintf(f, "<text x=\"%.1f\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\"",
                p->width / 2.0);
        if (8.0 * (double)strlen(p->title) > room)
            fprintf(f, " textLength=\"%.0f\" lengthAdjust=\"spacingAndGlyphs\"", room);
        fputs(">", f);
        ct_html_escape(f, p->title, (size_t)-1);
        fputs("</text>\n", f);
    }
}

static int close_svg(FILE *f)
{
    fputs("</svg>\n", f);
    return ferror(f) ? ct_error_set(CT_EIO, "cannot write the plot") : 0;
}

static void text_at(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra ? extra : "");
    ct_html_escape(f, s, (size_t)-1);
    fputs("</text>\n", f);
}

/* The x label under the plot area [L,R]x[T,B], the y label turned along its left side. */
static void axis_labels(FILE *f, const ct_svg_plot *p, double L, double R, double T, double B)
{
    if (p->xlabel)
        text_at(f, (L + R) / 2, p->height - 8, "middle", NULL, p->xlabel);
    if (p->ylabel) {
        char rot[64];
        snprintf(rot, sizeof rot, " transform=\"rotate(-90 14 %.1f)\"", (T + B) / 2);
        text_at(f, 14, (T + B) / 2, "middle", rot, p->ylabel);
    }
}

/* Axis labels, the frame and grid lines with tick labels. x ticks are automatic unless
 * given (custom positions with labels). */
static void axes(FILE *f, const ct_svg_plot *p, const frame *fr, const double *xt, const char *const *xl,
                 size_t nxt, int draw_x_ticks)
{
    double t[64];
    char lab[32];
    fprintf(f, "<g class=\"axes\" stroke=\"#cfd6dc\" stroke-width=\"1\">\n");
    size_t ny = ct_svg_ticks(fr->y0, fr->y1, 0, t, 64);
    for (size_t i = 0; i < ny; i++)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fr->L, py(fr, t[i]), fr->R,
                py(fr, t[i]));
    fprintf(f, "</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#555\"/>\n",
            fr->L, fr->T, fr->R - fr->L, fr->B - fr->T);
    for (size_t i = 0; i < ny; i++) {
        ct_svg_tick_label(t[i], lab, sizeof lab);
        text_at(f, fr->L - 6, py(fr, t[i]) + 4, "end", NULL, lab);
    }
    if (draw_x_ticks) {
        size_t nx;
        if (nxt) {
            nx = nxt;
        } else {
            double lo = fr->xlog ? pow(10.0, fr->x0) : fr->x0, hi = fr->xlog ? pow(10.0, fr->x1) : fr->x1;
            nx = ct_svg_ticks(lo, hi, fr->xlog, t, 64);
        }
        for (size_t i = 0; i < nx; i++) {
            double v = nxt ? xt[i] : t[i];
            if (!usable(v, fr->xlog))
                continue;
            double x = px(fr, v);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\"/>\n", x, fr->B, x,
                    fr->B + 5);
            if (nxt) {
                text_at(f, x, fr->B + 18, "middle", NULL, xl[i]);
            } else {
                ct_svg_tick_label(v, lab, sizeof lab);
                text_at(f, x, fr->B + 18, "middle", NULL, lab);
            }
        }
    }
    axis_labels(f, p, fr->L, fr->R, fr->T, fr->B);
}

static void legend(FILE *f, const frame *fr, const ct_svg_series *s, size_t n)
{
    if (n < 2)
        return;
    fprintf(f, "<g class=\"legend\">\n");
    for (size_t i = 0; i < n; i++) {
        double y = fr->T + 8 + 18.0 * (double)i;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", fr->R + 12, y,
                ct_svg_color(i));
        text_at(f, fr->R + 30, y + 10, "start", NULL, s[i].name ? s[i].name : "");
    }
    fprintf(f, "</g>\n");
}

static frame make_frame(const ct_svg_plot *p, const ct_svg_series *s, size_t n, int with_legend)
{
    frame fr = {0};
    fr.xlog = p->xlog;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < s[i].n; k++) {
            double x = s[i].x[k], y = s[i].y[k];
            if (!usable(x, p->xlog) || !isfinite(y))
                continue;
            xmin = x < xmin ? x : xmin;
            xmax = x > xmax ? x : xmax;
            ymin = y < ymin ? y : ymin;
            ymax = y > ymax ? y : ymax;
        }
    double x0 = p->xmin, x1 = p->xmax, y0 = p->ymin, y1 = p->ymax;
    settle_range(&x0, &x1, xmin, xmax, p->xlog);
    settle_range(&y0, &y1, ymin, ymax, 0);
    fr.x0 = p->xlog ? log10(x0) : x0;
    fr.x1 = p->xlog ? log10(x1) : x1;
    fr.y0 = y0;
    fr.y1 = y1;
    fr.L = 64;
    fr.R = p->width - 16 - (with_legend && n > 1 ? 150 : 0);
    fr.T = 36;
    fr.B = p->height - 46;
    return fr;
}

static int bad_args(FILE *f, const ct_svg_plot *p)
{
    if (!f || !p || p->width < 200 || p->height < 120)
        return ct_error_set(CT_EINVAL, "svg plot: needs an output and at least 200x120 pixels");
    return 0;
}

/* The markers of a series, each with a tooltip of its values. */
static void points(FILE *f, const frame *fr, const ct_svg_series *s, const char *radius)
{
    for (size_t k = 0; k < s->n; k++) {
        double x = s->x[k], y = s->y[k];
        if (!usable(x, fr->xlog) || !isfinite(y))
            continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"><title>", px(fr, x), py(fr, y), radius);
        ct_html_escape(f, s->name ? s->name : "", (size_t)-1);
        fprintf(f, " (%.6g, %.6g)</title></circle>\n", x, y);
    }
}

int ct_svg_lines(FILE *f, const ct_svg_plot *p, const ct_svg_series *s, size_t n_series, const double *xticks,
                 const char *const *xtick_labels, size_t n_xticks)
{
    int rc = bad_args(f, p);
    if (rc)
        return rc;
    frame fr = make_frame(p, s, n_series, 1);
    open_svg(f, p);
    axes(f, p, &fr, xticks, xtick_labels, n_xticks, 1);
    for (size_t i = 0; i < n_series; i++) {
        const char *c = ct_svg_color(i);
        int open = 0;
        fprintf(f, "<g class=\"series\" stroke=\"%s\" fill=\"%s\">\n", c, c);
        for (size_t k = 0; k < s[i].n; k++) { /* a non-finite point breaks the line */
            double x = s[i].x[k], y = s[i].y[k];
            if (!usable(x, p->xlog) || !isfinite(y)) {
                if (open)
                    fputs("\"/>\n", f);
                open = 0;
                continue;
            }
            fprintf(f, "%s%.1f,%.1f", open ? " " : "<polyline fill=\"none\" stroke-width=\"2\" points=\"",
                    px(&fr, x), py(&fr, y));
            open = 1;
        }
        if (open)
            fputs("\"/>\n", f);
        points(f, &fr, &s[i], "3");
        fputs("</g>\n", f);
    }
    legend(f, &fr, s, n_series);
    return close_svg(f);
}

int ct_svg_scatter(FILE *f, const ct_svg_plot *p, const ct_svg_series *s, size_t n_series,
                   const ct_svg_band *bands, size_t n_bands)
{
    static const char *const band_fill[] = {"#fbe3d6", "#ececec", "#dbe9f6", "#e3f1e4"};
    int rc = bad_args(f, p);
    if (rc)
        return rc;
    frame fr = make_frame(p, s, n_series, 1);
    open_svg(f, p);
    for (size_t b = 0; b < n_bands; b++) {
        double a = bands[b].x0 < fr.x0 ? fr.x0 : bands[b].x0, z = bands[b].x1 > fr.x1 ? fr.x1 : bands[b].x1;
        if (!(z > a))
            continue;
        fprintf(f, "<rect class=\"band\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                px(&fr, a), fr.T, px(&fr, z) - px(&fr, a), fr.B - fr.T, band_fill[b % 4]);
        text_at(f, (px(&fr, a) + px(&fr, z)) / 2, fr.T + 14, "middle", " fill=\"#555\" font-size=\"11\"",
                bands[b].label ? bands[b].label : "");
    }
    axes(f, p, &fr, NULL, NULL, 0, 1);
    for (size_t i = 0; i < n_series; i++) {
        fprintf(f, "<g class=\"series\" fill=\"%s\" fill-opacity=\"0.75\">\n", ct_svg_color(i));
        points(f, &fr, &s[i], "3.5");
        fputs("</g>\n", f);
    }
    legend(f, &fr, s, n_series);
    return close_svg(f);
}

int ct_svg_bars(FILE *f, const ct_svg_plot *p, const char *const *labels, const double *values, size_t n)
{
    int rc = bad_args(f, p);
    if (rc)
        return rc;
    double vmax = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(values[i]) && values[i] > vmax)
            vmax = values[i];
    ct_svg_plot q = *p;
    q.xmin = 0;
    q.xmax = (double)(n ? n : 1);
    q.xlog = 0;
    if (!isfinite(q.ymin))
        q.ymin = 0;
    if (!isfinite(q.ymax))
        q.ymax = NAN;
    double xs[2] = {0, 0}, ys[2] = {0, vmax > 0 ? vmax * 1.1 : 1};
    ct_svg_series range = {NULL, xs, ys, 2};
    frame fr = make_frame(&q, &range, 1, 0);
    open_svg(f, p);
    axes(f, p, &fr, NULL, NULL, 0, 0);
    double slot = (fr.R - fr.L) / (double)(n ? n : 1);
    char lab[32];
    for (size_t i = 0; i < n; i++) {
        double v = isfinite(values[i]) ? values[i] : 0, x = fr.L + slot * ((double)i + 0.15);
        double y = py(&fr, v > fr.y0 ? v : fr.y0);
        fprintf(f, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">", x, y,
                slot * 0.7, fr.B - y, ct_svg_color(i));
        fputs("<title>", f);
        ct_html_escape(f, labels[i], (size_t)-1);
        fprintf(f, ": %.6g</title></rect>\n", values[i]);
        ct_svg_tick_label(values[i], lab, sizeof lab);
        text_at(f, x + slot * 0.35, y - 4, "middle", NULL, isfinite(values[i]) ? lab : "n/a");
        text_at(f, x + slot * 0.35, fr.B + 16, "middle", " font-size=\"11\"", labels[i]);
    }
    return close_svg(f);
}

/* white -> #08519c */
static void heat_color(double t, char out[8])
{
    if (!isfinite(t))
        t = 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    int r = (int)lround(255 + (8 - 255) * t), g = (int)lround(255 + (81 - 255) * t),
        b = (int)lround(255 + (156 - 255) * t);
    snprintf(out, 8, "#%02x%02x%02x", r, g, b);
}

int ct_svg_heatmap(FILE *f, const ct_svg_plot *p, const char *const *row_labels, size_t n_rows,
                   const char *const *col_labels, size_t n_cols, const double *v, double vmin, double vmax)
{
    int rc = bad_args(f, p);
    if (rc)
        return rc;
    if (!(vmax > vmin))
        vmax = vmin + 1;
    double L = 90, R = p->width - 110.0, T = 36, B = p->height - 60.0;
    double cw = (R - L) / (double)(n_cols ? n_cols : 1), ch = (B - T) / (double)(n_rows ? n_rows : 1);
    open_svg(f, p);
    char col[8], lab[32];
    for (size_t r = 0; r < n_rows; r++) {
        for (size_t c = 0; c < n_cols; c++) {
            double val = v[r * n_cols + c];
            heat_color((val - vmin) / (vmax - vmin), col);
            double x = L + cw * (double)c, y = T + ch * (double)r;
            fprintf(f, "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\""
                       " stroke=\"#fff\"/>\n",
                    x, y, cw, ch, col);
            if (isfinite(val))
                snprintf(lab, sizeof lab, "%.2f", val);
            else
                snprintf(lab, sizeof lab, "n/a");
            text_at(f, x + cw / 2, y + ch / 2 + 4, "middle",
                    isfinite(val) && (val - vmin) / (vmax - vmin) > 0.55 ? " fill=\"#fff\"" : NULL, lab);
        }
        text_at(f, L - 6, T + ch * ((double)r + 0.5) + 4, "end", NULL, row_labels[r]);
    }
    for (size_t c = 0; c < n_cols; c++)
        text_at(f, L + cw * ((double)c + 0.5), B + 16, "middle", NULL, col_labels[c]);
    axis_labels(f, p, L, R, T, B);
    /* the colour scale: ten steps from vmin (bottom) to vmax (top) */
    double sh = (B - T) / 10;
    fprintf(f, "<g class=\"legend\">\n");
    for (int i = 0; i < 10; i++) {
        heat_color((i + 0.5) / 10, col);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"%.1f\" fill=\"%s\"/>\n", R + 20,
                B - sh * (i + 1), sh, col);
    }
    ct_svg_tick_label(vmin, lab, sizeof lab);
    text_at(f, R + 42, B, "start", NULL, lab);
    ct_svg_tick_label(vmax, lab, sizeof lab);
    text_at(f, R + 42, T + 10, "start", NULL, lab);
    fprintf(f, "</g>\n");
    return close_svg(f);
}
