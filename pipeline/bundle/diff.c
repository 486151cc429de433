/* How much two artifacts differ, in bytes and in lines (tables are CSV). */
#include "pipeline/bundle/bundle_internal.h"

#include <string.h>

static uint64_t count_lines(const char *s, size_t n)
{
    uint64_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    return lines + (n && s[n - 1] != '\n');
}

/* Next line [*pos, end) without its '\n'; returns 0 at the end. */
static int next_line(const char *s, size_t n, size_t *pos, const char **line, size_t *len)
{
    if (*pos >= n)
        return 0;
    const char *start = s + *pos;
    const char *nl = memchr(start, '\n', n - *pos);
    *line = start;
    *len = nl ? (size_t)(nl - start) : n - *pos;
    *pos += *len + (nl != NULL);
    return 1;
}

void bundle_diff_compute(const char *a, size_t la, const char *b, size_t lb, bundle_diff *d)
{
    memset(d, 0, sizeof *d);
    size_t common = la < lb ? la : lb;
    for (size_t i = 0; i < common; i++)
        d->bytes_differing += a[i] != b[i];
    d->bytes_differing += (uint64_t)(la > lb ? la - lb : lb - la);
    d->lines_a = count_lines(a, la);
    d->lines_b = count_lines(b, lb);
    /* Line i against line i: rows of a table keep their places, so a changed value
     * counts once and a missing row shows as the difference in counts. */
    size_t pa = 0, pb = 0;
    const char *x, *y;
    size_t nx, ny;
    for (;;) {
        int ha = next_line(a, la, &pa, &x, &nx), hb = next_line(b, lb, &pb, &y, &ny);
        if (!ha && !hb)
            break;
        if (ha != hb || nx != ny || memcmp(x, y, nx) != 0)
            d->lines_differing++;
    }
}
