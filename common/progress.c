#include "common/progress.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ct_progress {
    char label[96];
    char unit[16];
    char note[96];
    double total, done;
    double t0, last_draw;
    struct ct_progress *next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ct_progress *g_active; /* list of running progress items; the head is drawn */
static int g_live = -1;       /* -1: decide from isatty */
static int g_line_shown;

double ct_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int live(void)
{
    if (g_live < 0)
        g_live = isatty(STDERR_FILENO);
    return g_live;
}

void ct_progress_set_live(int l) { g_live = l; }

static void human(double v, char *buf, size_t n)
{
    const char *suffix[] = {"", "k", "M", "G", "T"};
    int i = 0;
    while (v >= 1000 && i < 4) {
        v /= 1000;
        i++;
    }
    snprintf(buf, n, i ? "%.1f%s" : "%.0f%s", v, suffix[i]);
}

static void format_line(const ct_progress *p, double t, char *line, size_t n)
{
    double el = t - p->t0, rate = el > 0 ? p->done / el : 0;
    char done[16], total[16], r[16], eta[32] = "";
    human(p->done, done, sizeof done);
    human(p->total, total, sizeof total);
    human(rate, r, sizeof r);
    if (p->total > 0 && rate > 0 && p->done < p->total) {
        double s = (p->total - p->done) / rate;
        snprintf(eta, sizeof eta, " ETA %dm%02ds", (int)(s / 60), (int)s % 60);
    }
    if (p->total > 0)
        snprintf(line, n, "%s %s/%s %s (%.0f%%) | %s %s/s%s%s%s", p->label, done, total, p->unit,
                 100.0 * p->done / p->total, r, p->unit, eta, p->note[0] ? " " : "", p->note);
    else
        snprintf(line, n, "%s %s %s | %s %s/s%s%s", p->label, done, p->unit, r, p->unit,
                 p->note[0] ? " " : "", p->note);
}

static void clear_line_locked(void)
{
    if (g_line_shown) {
        fputs("\r\033[K", stderr);
        g_line_shown = 0;
    }
}

static void draw_locked(ct_progress *p, double t, int force)
{
    if (live()) {
        if (!force && t - p->last_draw < 0.1)
            return;
        char line[320];
        format_line(p, t, line, sizeof line);
        int others = -1;
        for (ct_progress *q = g_active; q; q = q->next)
            others++;
        fprintf(stderr, "\r\033[K%s", line);
        if (others > 0)
            fprintf(stderr, " (+%d running)", others);
        g_line_shown = 1;
    } else {
        if (!force && t - p->last_draw < 10.0)
            return;
        char line[320];
        format_line(p, t, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
    p->last_draw = t;
}

ct_progress *ct_progress_start(const char *label, double total, const char *unit)
{
    ct_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->total = total;
    p->t0 = ct_seconds();
    p->last_draw = p->t0;
    pthread_mutex_lock(&g_lock);
    p->next = g_active;
    g_active = p;
    pthread_mutex_unlock(&g_lock);
    return p;
}

void ct_progress_update(ct_progress *p, double done)
{
    if (!p)
        return;
    pthread_mutex_lock(&g_lock);
    p->done = done;
    draw_locked(p, ct_seconds(), 0);
    pthread_mutex_unlock(&g_lock);
}

void ct_progress_note(ct_progress *p, const char *note)
{
    if (!p)
        return;
    pthread_mutex_lock(&g_lock);
    snprintf(p->note, sizeof p->note, "%s", note);
    pthread_mutex_unlock(&g_lock);
}

void ct_progress_finish(ct_progress *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&g_lock);
    for (ct_progress **q = &g_active; *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    double t = ct_seconds();
    if (p->total > 0)
        p->done = p->done > p->total ? p->done : p->total;
    clear_line_locked();
    char line[320];
    format_line(p, t, line, sizeof line);
    fprintf(stderr, "%s in %.1fs\n", line, t - p->t0);
    fflush(stderr);
    pthread_mutex_unlock(&g_lock);
    free(p);
}

void ct_log(const char *fmt, ...)
{
    pthread_mutex_lock(&g_lock);
    clear_line_locked();
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&g_lock);
}
