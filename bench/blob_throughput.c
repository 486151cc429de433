/* Blob throughput of the cache: streams an artifact (default 2 GiB) through the
 * blob writer (SHA-256, 64 MiB chunks, one durable LMDB commit per chunk), then
 * reads it back zero-copy, touching every byte (sum of 64-bit words), several times.
 * Before the first read the file's pages are dropped from the page cache
 * (POSIX_FADV_DONTNEED), so it reads from the disk (read_cold_gb_s); the second
 * maps page-cached pages into the process (read_first_warm_gb_s); later passes find
 * them mapped. read_gb_s is the best warm pass. Prints key=value lines; GB = 1e9 bytes.
 *
 *   build/bench/bench_blob_throughput [--dir DIR] [--gib N] [--passes N]
 *
 * The cache is created in a new directory under DIR (default $TMPDIR or /tmp) and
 * deleted afterwards. */
#include "cache/cache.h"
#include "common/progress.h"
#include "common/error.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Sum of the 64-bit words of a chunk (a tail shorter than a word is added bytewise). */
static uint64_t sum_words(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, sizeof w);
        s0 += w[0];
        s1 += w[1];
        s2 += w[2];
        s3 += w[3];
    }
    for (; i < len; i++)
        s0 += p[i];
    return s0 + s1 + s2 + s3;
}

static int read_pass(ct_cache *c, const uint8_t key[CT_KEY_LEN], uint64_t *sum, uint64_t *bytes)
{
    ct_blob_reader *r;
    int rc = ct_blob_reader_open(c, key, &r);
    if (rc)
        return rc;
    ct_blob_chunk ch;
    *sum = 0;
    *bytes = 0;
    while ((rc = ct_blob_next_chunk(r, &ch)) == 1) {
        *sum += sum_words(ch.data, ch.len);
        *bytes += ch.len;
    }
    ct_blob_reader_close(r);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir_arg = NULL;
    double gib = 2.0;
    int passes = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir"))
            dir_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--gib"))
            gib = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--passes"))
            passes = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--gib N] [--passes N]\n", argv[0]);
            return 2;
        }
    }
    if (gib <= 0 || passes < 1) {
        fprintf(stderr, "--gib and --passes must be positive\n");
        return 2;
    }
    char dir[PATH_MAX];
    const char *tmp = dir_arg ? dir_arg : getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ct-bench-blob-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = dir;
    ct_cache *c;
    if (ct_cache_open(&o, &c)) {
        fprintf(stderr, "%s\n", ct_error_message());
        return 1;
    }
    uint64_t total = (uint64_t)(gib * (double)(1ULL << 30));
    const size_t piece = (size_t)16 << 20;
    uint64_t *buf = malloc(piece);
    if (!buf) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < piece / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = x;
    }
    uint8_t key[CT_KEY_LEN];
    memset(key, 0xb1, sizeof key);

    int rc = 0;
    double t0 = ct_seconds();
    ct_blob_writer *w;
    if ((rc = ct_blob_writer_open(c, &w)) == 0) {
        for (uint64_t done = 0; !rc && done < total; done += piece) {
            buf[0] = done; /* every piece differs */
            size_t n = total - done < piece ? (size_t)(total - done) : piece;
            rc = ct_blob_write(w, buf, n);
        }
        if (rc)
            ct_blob_abort(w);
        else
            rc = ct_blob_commit(w, key, NULL);
    }
    double t_write = ct_seconds() - t0;
    free(buf);
    if (rc) {
        fprintf(stderr, "%s\n", ct_error_message());
        ct_cache_close(c);
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        return 1;
    }

    /* Data written with write(2) is clean in the page cache after the commit's
     * fdatasync and not mapped yet, so it can be dropped. */
    char data_path[PATH_MAX + 16];
    snprintf(data_path, sizeof data_path, "%s/data.mdb", dir);
    int fd = open(data_path, O_RDONLY);
    if (fd >= 0) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    double best = 1e30, cold = 0, first = 0;
    uint64_t sum = 0, bytes = 0, sum0 = 0;
    for (int p = 0; p < passes + 1 && !rc; p++) {
        t0 = ct_seconds();
        rc = read_pass(c, key, &sum, &bytes);
        double t = ct_seconds() - t0;
        if (p == 0) {
            cold = t;
            sum0 = sum;
        } else if (p == 1) {
            first = t;
        }
        if (p > 0 && t < best)
            best = t;
        if (sum != sum0 || bytes != total) {
            fprintf(stderr, "read pass %d: %llu bytes, sum %llx (expected %llu bytes, sum %llx)\n", p,
                    (unsigned long long)bytes, (unsigned long long)sum, (unsigned long long)total,
                    (unsigned long long)sum0);
            rc = 1;
        }
    }
    if (rc)
        fprintf(stderr, "%s\n", ct_error_message());
    ct_cache_stats st;
    ct_cache_stat(c, &st);
    ct_cache_close(c);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    if (rc)
        return 1;
    printf("bytes=%llu\n", (unsigned long long)total);
    printf("chunks=%llu\n", (unsigned long long)st.chunks);
    printf("passes=%d\n", passes);
    printf("checksum=%016llx\n", (unsigned long long)sum);
    printf("write_s=%.3f\n", t_write);
    printf("read_cold_s=%.3f\n", cold);
    printf("read_first_warm_s=%.3f\n", first);
    printf("read_best_s=%.3f\n", best);
    printf("write_gb_s=%.3f\n", (double)total / t_write / 1e9);
    printf("read_cold_gb_s=%.3f\n", (double)total / cold / 1e9);
    printf("read_first_warm_gb_s=%.3f\n", (double)total / first / 1e9);
    printf("read_gb_s=%.3f\n", (double)total / best / 1e9);
    return 0;
}
