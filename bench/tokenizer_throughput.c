/* Tokenizer throughput on one core: encodes every line of an English corpus sample
 * (Project Gutenberg paragraphs) with a tokenizer.json and prints key=value lines,
 * the last one mb_per_s (input megabytes, 1e6 bytes, per second). The first pass
 * starts with an empty word cache; the second reuses it.
 *
 *   build/bench/bench_tokenizer_throughput [--tokenizer PATH] [--corpus PATH] [--passes N] */
#include "common/error.h"
#include "common/progress.h"
#include "common/io.h"
#include "models/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *tok_path = CT_SOURCE_ROOT "/tests/fixtures/tokenizers/gpt-neox-20b/20B_tokenizer.json.zst";
    const char *corpus = CT_SOURCE_ROOT "/tests/fixtures/corpus/en_sample.txt.zst";
    int passes = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokenizer"))
            tok_path = argv[i + 1];
        else if (!strcmp(argv[i], "--corpus"))
            corpus = argv[i + 1];
        else if (!strcmp(argv[i], "--passes"))
            passes = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--tokenizer PATH] [--corpus PATH] [--passes N]\n", argv[0]);
            return 2;
        }
    }
    double t0 = ct_seconds();
    ct_tokenizer *tok;
    if (ct_tok_load(tok_path, &tok)) {
        fprintf(stderr, "%s\n", ct_error_message());
        return 1;
    }
    double t_load = ct_seconds() - t0;
    char *text;
    size_t len;
    if (ct_read_file(corpus, &text, &len)) {
        fprintf(stderr, "%s\n", ct_error_message());
        return 1;
    }
    printf("tokenizer=%s\ncorpus=%s\nbytes=%zu\nload_s=%.3f\n", tok_path, corpus, len, t_load);
    double best = 0;
    for (int pass = 0; pass < passes; pass++) {
        size_t tokens = 0, lines = 0;
        uint64_t digest = 0xCBF29CE484222325ULL; /* FNV-1a over ids: same binary, same ids */
        double start = ct_seconds();
        for (size_t off = 0; off < len;) {
            const char *nl = memchr(text + off, '\n', len - off);
            size_t end = nl ? (size_t)(nl - text) + 1 : len; /* the newline stays with its line */
            int32_t *ids;
            size_t n;
            if (ct_tok_encode(tok, text + off, end - off, &ids, &n)) {
                fprintf(stderr, "%s\n", ct_error_message());
                return 1;
            }
            for (size_t i = 0; i < n; i++)
                digest = (digest ^ (uint32_t)ids[i]) * 1099511628211ULL;
            tokens += n;
            lines++;
            free(ids);
            off = end;
        }
        double secs = ct_seconds() - start;
        double mbps = (double)len / 1e6 / secs;
        if (mbps > best)
            best = mbps;
        printf("pass%d_s=%.3f\npass%d_mb_per_s=%.2f\npass%d_tokens_per_s=%.0f\n", pass, secs, pass, mbps, pass,
               (double)tokens / secs);
        if (pass == 0)
            printf("lines=%zu\ntokens=%zu\nbytes_per_token=%.3f\nids_fnv1a=%016llx\n", lines, tokens,
                   (double)len / (double)tokens, (unsigned long long)digest);
    }
    free(text);
    ct_tok_free(tok);
    printf("mb_per_s=%.2f\n", best);
    return 0;
}
