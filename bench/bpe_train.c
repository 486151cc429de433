/* BPE training time on the shipped English corpus (data/corpora/en): reading and
 * decompressing, counting pieces (NFC + pre-tokenizer + hash map), merging.
 *
 *   bench_bpe_train [VOCAB_SIZE [MIN_FREQUENCY [PATTERN...]]]
 *
 * Defaults: 4096, 2, $CT_SOURCE_DIR (or the source tree) /data/corpora/en/ (every .txt.zst).
 * Prints key=value lines. One thread. */
#include <stdio.h>
#include <stdlib.h>

#include "common/error.h"
#include "common/progress.h"
#include "models/corpus/corpus.h"
#include "models/tokenizer/train.h"

int main(int argc, char **argv)
{
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    if (argc > 1)
        o.vocab_size = strtoul(argv[1], NULL, 10);
    if (argc > 2)
        o.min_frequency = strtoull(argv[2], NULL, 10);
    char def[4096];
    const char *root = getenv("CT_SOURCE_DIR");
    snprintf(def, sizeof def, "%s/data/corpora/en/*.txt.zst", root && *root ? root : CT_SOURCE_ROOT);
    const char *one[1] = {def};
    const char *const *files = argc > 3 ? (const char *const *)(argv + 3) : one;
    size_t nfiles = argc > 3 ? (size_t)(argc - 3) : 1;

    ct_corpus *c;
    ct_tok_trainer *t;
    if (ct_corpus_open(files, nfiles, CT_CORPUS_TEXT, NULL, &c) || ct_tok_trainer_new(&o, &t)) {
        fprintf(stderr, "bench_bpe_train: %s\n", ct_error_message());
        return 1;
    }
    double t_read = 0, t_count = 0, bytes = 0, docs = 0;
    double t0 = ct_seconds();
    for (;;) {
        const char *s;
        size_t n;
        double a = ct_seconds();
        int rc = ct_corpus_next(c, &s, &n);
        double b = ct_seconds();
        t_read += b - a;
        if (rc < 0) {
            fprintf(stderr, "bench_bpe_train: %s\n", ct_error_message());
            return 1;
        }
        if (rc == 0)
            break;
        if (ct_tok_trainer_feed(t, s, n)) {
            fprintf(stderr, "bench_bpe_train: %s\n", ct_error_message());
            return 1;
        }
        t_count += ct_seconds() - b;
        bytes += (double)n;
        docs++;
    }
    double t1 = ct_seconds();
    if (ct_tok_trainer_train(t)) {
        fprintf(stderr, "bench_bpe_train: %s\n", ct_error_message());
        return 1;
    }
    double t2 = ct_seconds();
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    printf("files=%zu\n", ct_corpus_n_files(c));
    printf("documents=%.0f\n", docs);
    printf("text_bytes=%.0f\n", bytes);
    printf("pieces=%llu\n", (unsigned long long)st.pieces);
    printf("distinct_pieces=%llu\n", (unsigned long long)st.distinct);
    printf("vocab_size=%zu\n", st.vocab);
    printf("merges=%zu\n", st.merges);
    printf("read_s=%.3f\n", t_read);
    printf("count_s=%.3f\n", t_count);
    printf("count_MB_per_s=%.1f\n", bytes / 1e6 / (t_count > 0 ? t_count : 1e-9));
    printf("merge_s=%.3f\n", t2 - t1);
    printf("total_s=%.3f\n", t2 - t0);
    ct_tok_trainer_free(t);
    ct_corpus_close(c);
    return 0;
}
