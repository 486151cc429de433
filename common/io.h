/* Reading input files that may be compressed (.gz, .zst, .xz, .bz2 — detected from
 * the content, not the name) through libarchive's raw format, plus small file helpers. */
#ifndef CT_IO_H
#define CT_IO_H

#include <stddef.h>

typedef struct ct_reader ct_reader; /* opaque: a decompressing byte stream */

int ct_reader_open(const char *path, ct_reader **out);
/* Reads up to `cap` bytes; *got == 0 at end of stream. */
int ct_reader_read(ct_reader *r, void *buf, size_t cap, size_t *got);
/* Next line without its '\n' (and '\r'); the pointer stays valid until the next
 * call. Returns 1 with a line, 0 at end of stream, negative on error. */
int ct_reader_getline(ct_reader *r, const char **line, size_t *len);
void ct_reader_close(ct_reader *r); /* NULL ok */

/* Whole (decompressed) content, NUL-terminated; caller frees *data. */
int ct_read_file(const char *path, char **data, size_t *len);

/* Writes `len` bytes to `path` atomically (temporary file + fsync + rename). */
int ct_write_file_atomic(const char *path, const void *data, size_t len);

/* mkdir -p; error names the path. */
int ct_mkdirs(const char *path, int mode);

#endif
