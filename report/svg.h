/* SVG plots for the report: line plots (optionally log-x), scatter plots with shaded
 * x-bands (RelIE class regions), bar charts and heatmaps. Every plot has a title,
 * axes with ticks, axis labels (the caller puts the unit in the label) and a legend
 * when there is more than one series.
 *
 * Output is deterministic: numbers are printed with fixed formats and nothing depends
 * on time, locale or addresses, so the same data gives the same bytes. All text is
 * escaped (ct_html_escape). Non-finite values are skipped (a gap in a line). */
#ifndef CT_REPORT_SVG_H
#define CT_REPORT_SVG_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *id;     /* id attribute of the <svg> (may be NULL) */
    const char *title;  /* drawn above the plot */
    const char *xlabel; /* with units, e.g. "training tokens (log scale)" */
    const char *ylabel;
    int width, height;  /* pixels */
    int xlog;           /* log10 x axis (values <= 0 are skipped) */
    /* Axis ranges; NAN: from the data (log axes widen to whole decades). */
    double xmin, xmax, ymin, ymax;
} ct_svg_plot;

#define CT_SVG_PLOT_INIT {NULL, NULL, NULL, NULL, 640, 320, 0, NAN, NAN, NAN, NAN}

typedef struct {
    const char *name; /* legend entry */
    const double *x, *y;
    size_t n;
} ct_svg_series;

/* A shaded band x0 <= x <= x1 of a scatter plot, labelled at its top. */
typedef struct {
    const char *label;
    double x0, x1;
} ct_svg_band;

/* Line plot: one polyline with point markers per series. `xticks`/`xtick_labels`
 * (n_xticks; may be 0) replace the automatic x ticks, e.g. checkpoint names at their
 * token counts. */
int ct_svg_lines(FILE *f, const ct_svg_plot *p, const ct_svg_series *s, size_t n_series, const double *xticks,
                 const char *const *xtick_labels, size_t n_xticks);
/* Scatter plot: one colour per series, bands drawn behind the points. */
int ct_svg_scatter(FILE *f, const ct_svg_plot *p, const ct_svg_series *s, size_t n_series,
                   const ct_svg_band *bands, size_t n_bands);
/* Bar chart: one bar per label, value printed above it. */
int ct_svg_bars(FILE *f, const ct_svg_plot *p, const char *const *labels, const double *values, size_t n);
/* Heatmap of v[r * n_cols + c] over [vmin, vmax] (white to blue), value in each
 * cell, colour scale as the legend. */
int ct_svg_heatmap(FILE *f, const ct_svg_plot *p, const char *const *row_labels, size_t n_rows,
                   const char *const *col_labels, size_t n_cols, const double *v, double vmin, double vmax);

/* Tick positions of an axis over [lo, hi]: powers of ten on a log axis, else 1-2-5
 * steps; at most `max` are written to out. Returns the count (0 for an empty or
 * invalid range). Exposed for the tests. */
size_t ct_svg_ticks(double lo, double hi, int log_axis, double *out, size_t max);
/* A tick label: "0.25", "1000", or with an SI suffix from 10^4 on: "10K", "1M", "2.5B". */
void ct_svg_tick_label(double v, char *out, size_t n);

/* The categorical colour of series i (Okabe-Ito palette, cycled), "#rrggbb". */
const char *ct_svg_color(size_t i);

#endif
