/* crosstime tokenizer train --vocab-size N --out tokenizer.json [options] FILES...
 *
 * Trains a byte-level BPE tokenizer (GPT-NeoX style) on a corpus and writes a Hugging
 * Face tokenizer.json. Exit status: 0 ok, 1 error (message on stderr), 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/error.h"
#include "common/progress.h"
#include "models/corpus/corpus.h"
#include "models/tokenizer/train.h"

static const char usage_text[] =
    "usage: crosstime tokenizer train --vocab-size N --out PATH [options] FILES...\n"
    "  Trains a byte-level BPE tokenizer (GPT-NeoX style) and writes a tokenizer.json.\n"
    "  FILES are corpus files or glob patterns (plain, .gz, .zst, .xz).\n"
    "options:\n"
    "  --vocab-size N        special tokens + 256 byte symbols + merges (required)\n"
    "  --min-frequency N     least occurrences of a pair to merge it (default 2)\n"
    "  --format text|jsonl   text: one document per line; jsonl: JSON objects (default text)\n"
    "  --text-field NAME     jsonl field holding the text (default text)\n"
    "  --special TOKEN       a special token (repeatable; default <|endoftext|> <|padding|>)\n"
    "  --no-nfc              no NFC normalization (default: NFC, as GPT-NeoX-20B)\n"
    "  --out PATH            the tokenizer.json to write (required)\n";

static int parse_size(const char *s, const char *opt, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "crosstime tokenizer train: %s expects a non-negative integer, not \"%s\"\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int fail(void)
{
    fprintf(stderr, "crosstime tokenizer train: %s\n", ct_error_message());
    return 1;
}

static int feed_corpus(ct_tok_trainer *tr, ct_corpus *c)
{
    ct_progress *pg = ct_progress_start("reading corpus", 0, "B");
    double bytes = 0;
    size_t last_file = (size_t)-1;
    int rc;
    const char *text;
    size_t len;
    while ((rc = ct_corpus_next(c, &text, &len)) == 1) {
        rc = ct_tok_trainer_feed(tr, text, len);
        if (rc) {
            const char *file;
            size_t line;
            ct_corpus_where(c, &file, &line);
            rc = ct_error_wrap(rc, "%s:%zu", file ? file : "?", line);
            break;
        }
        bytes += (double)len;
        size_t f = ct_corpus_file_index(c);
        if (f != last_file) {
            char note[64];
            snprintf(note, sizeof note, "file %zu/%zu", f + 1, ct_corpus_n_files(c));
            ct_progress_note(pg, note);
            last_file = f;
        }
        ct_progress_update(pg, bytes);
    }
    ct_progress_finish(pg);
    return rc;
}

int ct_cmd_tokenizer_train(int argc, char **argv)
{
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    const char *out = NULL, *field = NULL, *fmt_name = "text";
    const char **specials = NULL, **files = NULL;
    size_t nspecial = 0, nfiles = 0;
    int have_vocab = 0, status = 2;
    unsigned long long v;
    specials = calloc((size_t)argc + 1, sizeof *specials);
    files = calloc((size_t)argc + 1, sizeof *files);
    if (!specials || !files) {
        fprintf(stderr, "crosstime tokenizer train: out of memory\n");
        status = 1;
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            status = 0;
            goto done;
        } else if (!strcmp(a, "--vocab-size") && has_val) {
            if (parse_size(argv[++i], a, &v))
                goto done;
            o.vocab_size = (size_t)v;
            have_vocab = 1;
        } else if (!strcmp(a, "--min-frequency") && has_val) {
            if (parse_size(argv[++i], a, &v))
                goto done;
            o.min_frequency = v;
        } else if (!strcmp(a, "--format") && has_val) {
            fmt_name = argv[++i];
        } else if (!strcmp(a, "--text-field") && has_val) {
            field = argv[++i];
        } else if (!strcmp(a, "--special") && has_val) {
            specials[nspecial++] = argv[++i];
        } else if (!strcmp(a, "--no-nfc")) {
            o.nfc = 0;
        } else if (!strcmp(a, "--out") && has_val) {
            out = argv[++i];
        } else if (!strcmp(a, "--")) {
            while (++i < argc)
                files[nfiles++] = argv[i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "crosstime tokenizer train: unknown option or missing value: %s\n", a);
            goto usage;
        } else {
            files[nfiles++] = a;
        }
    }
    if (!have_vocab || !out || !nfiles)
        goto usage;
    ct_corpus_format fmt;
    if (ct_corpus_format_parse(fmt_name, &fmt)) {
        status = fail();
        goto done;
    }
    if (nspecial) {
        o.special_tokens = specials;
        o.n_special = nspecial;
    }
    o.progress = 1;

    double t0 = ct_seconds();
    ct_tok_trainer *tr = NULL;
    ct_corpus *c = NULL;
    int rc = ct_tok_trainer_new(&o, &tr);
    if (!rc)
        rc = ct_corpus_open(files, nfiles, fmt, field, &c);
    if (!rc)
        rc = feed_corpus(tr, c);
    double t1 = ct_seconds();
    if (!rc)
        rc = ct_tok_trainer_train(tr);
    double t2 = ct_seconds();
    if (!rc)
        rc = ct_tok_trainer_save(tr, out);
    if (!rc) {
        ct_tok_train_stats st;
        ct_tok_trainer_stats(tr, &st);
        ct_log("tokenizer train: %s: vocab %zu (%zu merges) from %llu pieces (%llu distinct); "
               "counting %.2f s, merging %.2f s",
               out, st.vocab, st.merges, (unsigned long long)st.pieces, (unsigned long long)st.distinct,
               t1 - t0, t2 - t1);
        if (st.vocab < o.vocab_size)
            ct_log("tokenizer train: stopped below vocab size %zu: no pair occurs %llu times or more",
                   o.vocab_size, (unsigned long long)(o.min_frequency > 1 ? o.min_frequency : 1));
    }
    ct_corpus_close(c);
    ct_tok_trainer_free(tr);
    status = rc ? fail() : 0;
    goto done;
usage:
    fputs(usage_text, stderr);
    status = 2;
done:
    free(specials);
    free(files);
    return status;
}
