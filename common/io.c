#include "common/io.h"
#include "common/error.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ct_reader {
    struct archive *a;
    char *path;
    /* line buffer for ct_reader_getline */
    char *buf;
    size_t cap, start, end;
    int eof;
};

int ct_reader_open(const char *path, ct_reader **out)
{
    ct_reader *r = calloc(1, sizeof *r);
    if (!r)
        return ct_error_set(CT_ENOMEM, "out of memory");
    r->path = strdup(path);
    r->a = archive_read_new();
    archive_read_support_filter_all(r->a);
    archive_read_support_format_raw(r->a);
    struct archive_entry *e;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
        /* libarchive's raw reader refuses empty input; an empty file is just empty */
        archive_read_free(r->a);
        r->a = NULL;
        r->eof = 1;
        *out = r;
        return 0;
    }
    if (archive_read_open_filename(r->a, path, 1 << 20) != ARCHIVE_OK ||
        archive_read_next_header(r->a, &e) != ARCHIVE_OK) {
        int rc = ct_error_set(CT_EIO, "%s: cannot open: %s", path,
                              archive_error_string(r->a) ? archive_error_string(r->a) : strerror(errno));
        ct_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int ct_reader_read(ct_reader *r, void *buf, size_t cap, size_t *got)
{
    if (!r->a) {
        *got = 0;
        return 0;
    }
    la_ssize_t n = archive_read_data(r->a, buf, cap);
    if (n < 0)
        return ct_error_set(CT_EIO, "%s: read error: %s", r->path, archive_error_string(r->a));
    *got = (size_t)n;
    return 0;
}

int ct_reader_getline(ct_reader *r, const char **line, size_t *len)
{
    for (;;) {
        char *nl = r->end > r->start ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;
        if (nl || (r->eof && r->end > r->start)) {
            size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
            *line = r->buf + r->start;
            r->start += n + (nl != NULL);
            if (n && (*line)[n - 1] == '\r')
                n--;
            ((char *)*line)[n] = '\0'; /* safe: the '\n', '\r' or spare byte */
            *len = n;
            return 1;
        }
        if (r->eof)
            return 0;
        /* compact, grow, refill */
        if (r->start)
            memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
        if (r->cap - r->end < (1 << 16) + 1) {
            size_t cap = r->cap ? r->cap * 2 : 1 << 20;
            char *b = realloc(r->buf, cap);
            if (!b)
                return ct_error_set(CT_ENOMEM, "%s: out of memory reading a line", r->path);
            r->buf = b;
            r->cap = cap;
        }
        size_t got;
        int rc = ct_reader_read(r, r->buf + r->end, r->cap - r->end - 1, &got);
        if (rc)
            return rc;
        if (got == 0)
            r->eof = 1;
        r->end += got;
    }
}

void ct_reader_close(ct_reader *r)
{
    if (!r)
        return;
    if (r->a)
        archive_read_free(r->a);
    free(r->buf);
    free(r->path);
    free(r);
}

int ct_read_file(const char *path, char **data, size_t *len)
{
    ct_reader *r;
    int rc = ct_reader_open(path, &r);
    if (rc)
        return rc;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            ct_reader_close(r);
            return ct_error_set(CT_ENOMEM, "%s: out of memory", path);
        }
        if (cap - n < 2) {
            char *b = realloc(buf, cap * 2);
            if (!b)
                free(buf);
            buf = b;
            cap *= 2;
            continue;
        }
        size_t got;
        rc = ct_reader_read(r, buf + n, cap - n - 1, &got);
        if (rc) {
            free(buf);
            ct_reader_close(r);
            return rc;
        }
        if (got == 0)
            break;
        n += got;
    }
    ct_reader_close(r);
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    return 0;
}

int ct_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ct_error_set(CT_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ct_error_set(CT_EIO, "%s: write failed: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ct_error_set(CT_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

int ct_mkdirs(const char *path, int mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ct_error_set(CT_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
                return ct_error_set(CT_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}
