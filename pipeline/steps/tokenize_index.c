/* tokenize_index: corpus + tokenizer -> every sequence the recipe needs, as one token
 * shard (pipeline/steps/shard.h) labelled "tokenize/index".
 *
 * Why an index step: the split into train/val/test is a seeded permutation over all
 * sequences, so every shard depends on the whole corpus prefix. Reading and tokenizing
 * the corpus once here and letting the `tokenize` shard steps slice the result keeps
 * shards independent steps (resumable one by one) without re-reading the corpus for
 * each of them.
 *
 * A sequence is the first corpus.seq_len tokens of a document (METHOD §1): shorter
 * documents are skipped, longer ones truncated. No BOS is added: the tokenizer adds no
 * special tokens, and the first position of every sequence is dropped downstream.
 *
 * With corpus.mix the documents come from the language mixture (models/corpus:
 * weighted round-robin over the languages, ct_steps_corpus_open), numbered in the
 * order drawn, which pretrain_tokens repeats; the artifact then ends with the language
 * table (langtab.h: each sequence's language) and the summary counts the sequences
 * per language. */
#include "common/error.h"
#include "models/checkpoint/checkpoint.h"
#include "models/corpus/corpus.h"
#include "models/tokenizer/tokenizer.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/langtab.h"
#include "pipeline/steps/shard.h"
#include "pipeline/steps/sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The tokenizer.json of the recipe: model.tokenizer (a tokenizer.json file, a
 * checkpoint directory or hf: source holding one), else the first checkpoint's, else
 * the tokenizer_train artifact. */
static int tokenizer_input(ct_plan *plan, const ct_recipe *r, const char **label)
{
    char *src = NULL;
    int rc = 0;
    const char *tok = json_string_value(ct_recipe_get(r, "model.tokenizer"));
    const char *first = json_string_value(ct_recipe_get(r, "model.checkpoints.0.source"));
    if (tok && *tok)
        rc = ct_recipe_resolve_path(r, "model.tokenizer", &src);
    else if (first && strncmp(first, "pretrain:", 9) != 0)
        rc = ct_recipe_resolve_path(r, "model.checkpoints.0.source", &src);
    else {
        size_t idx;
        if (ct_plan_find(plan, "tokenizer", &idx) == 0) {
            *label = ct_plan_get(plan, idx)->label;
            return 0;
        }
        return ct_error_set(CT_EINVAL, "%s: no tokenizer: set model.tokenizer, or a pretrain section "
                            "to train one", ct_recipe_path(r));
    }
    if (rc)
        return rc;
    struct stat st;
    char *file = NULL;
    if (strncmp(src, "hf:", 3) == 0 || (stat(src, &st) == 0 && S_ISDIR(st.st_mode))) {
        char *dir = NULL;
        if ((rc = ct_ckpt_resolve(src, &dir)) == 0) {
            size_t n = strlen(dir) + 32;
            file = malloc(n);
            if (file)
                snprintf(file, n, "%s/tokenizer.json", dir);
            else
                rc = ct_error_set(CT_ENOMEM, "out of memory");
        }
        free(dir);
    } else {
        file = src;
        src = NULL;
    }
    if (!rc)
        rc = ct_plan_source_file(plan, file, label);
    free(file);
    free(src);
    return rc;
}

static int plan_index(ct_plan *plan, const ct_recipe *recipe)
{
    if (!ct_recipe_get(recipe, "corpus"))
        return 0;
    /* Without the corpus, or without the checkpoint whose tokenizer.json is used, the
     * notes say what to download and everything downstream stays unplanned. */
    if (!ct_steps_corpus_available(plan, recipe))
        return 0;
    const char *tok_src = json_string_value(ct_recipe_get(recipe, "model.tokenizer"));
    const char *first = json_string_value(ct_recipe_get(recipe, "model.checkpoints.0.source"));
    if ((!tok_src || !*tok_src) && first && strncmp(first, "pretrain:", 9) != 0 &&
        !ct_steps_checkpoint_available(plan, recipe, 0))
        return 0;
    ct_steps_budget b;
    int rc = ct_steps_budget_of(recipe, &b);
    json_t *corpus = NULL;
    const char *tok = NULL;
    if (!rc)
        rc = ct_steps_corpus_sources(plan, recipe, &corpus);
    if (!rc)
        rc = tokenizer_input(plan, recipe, &tok);
    if (rc) {
        json_decref(corpus);
        return rc;
    }
    if (json_object_size(ct_recipe_get(recipe, "corpus.languages")))
        ct_plan_note(plan, "corpus.languages is not used: weight languages with corpus.mix "
                           "(language -> {files, weight})");
    json_t *params = ct_steps_corpus_params(recipe);
    json_object_set_new(params, "seq_len", json_integer(b.seq_len));
    json_object_set_new(params, "n_seq", json_integer(b.n_train + b.n_val + b.n_test));
    return ct_plan_add(plan, "tokenize_index", "tokenize/index", params,
                       json_pack("{s:o, s:s}", "corpus", corpus, "tokenizer", tok));
}

static int run_index(ct_step_ctx *ctx)
{
    json_t *p = ct_step_params(ctx);
    long long T = json_integer_value(json_object_get(p, "seq_len"));
    long long n = json_integer_value(json_object_get(p, "n_seq"));
    uint64_t *seq_index = malloc((size_t)n * 8 + 8), *doc_index = malloc((size_t)n * 8 + 8);
    uint8_t *lang = malloc((size_t)n + 1);
    ct_tokenizer *tok = NULL;
    ct_corpus *c = NULL;
    ct_blob_writer *w = NULL;
    int rc = 0;
    if (!seq_index || !doc_index || !lang)
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    if (!rc)
        rc = ct_steps_load_tokenizer(ctx, "tokenizer", &tok);
    if (!rc)
        rc = ct_steps_corpus_open(ctx, "corpus", &c);
    if (!rc)
        rc = ct_step_output(ctx, &w);
    if (!rc)
        rc = ct_tokshard_write_header(w, (uint32_t)T, (uint64_t)n);
    ct_progress *prog = rc ? NULL : ct_step_progress(ctx, (double)n, "seq");
    long long got = 0, docs = 0;
    while (!rc && got < n) {
        const char *text;
        size_t len;
        int more = ct_corpus_next(c, &text, &len);
        if (more < 0) {
            rc = more;
            break;
        }
        if (more == 0)
            break;
        int32_t *ids = NULL;
        size_t nid = 0;
        if ((rc = ct_tok_encode(tok, text, len, &ids, &nid))) {
            const char *file;
            size_t line;
            ct_corpus_where(c, &file, &line);
            rc = ct_error_wrap(rc, "%s:%zu", file ? file : "?", line);
        } else if (nid >= (size_t)T) {
            seq_index[got] = (uint64_t)got;
            doc_index[got] = (uint64_t)docs;
            lang[got] = (uint8_t)(ct_corpus_lang(c) < 0 ? 0 : ct_corpus_lang(c));
            rc = ct_steps_write_i32(w, ids, (size_t)T);
            got++;
            if (got % 64 == 0) {
                ct_progress_update(prog, (double)got);
                if (ct_step_interrupted(ctx))
                    rc = ct_error_set(CT_EINTR, "interrupted");
            }
        }
        free(ids);
        docs++;
    }
    size_t nf = ct_corpus_n_files(c), nl = ct_corpus_n_langs(c);
    if (!rc && got < n)
        rc = ct_error_set(CT_EINVAL, "%s: the corpus (%zu files, first %s) has only %lld documents of at "
                          "least %lld tokens; the recipe needs %lld sequences (train + val + test)",
                          ct_step_label(ctx), nf, nf ? ct_corpus_file(c, 0) : "-", got, T, n);
    if (!rc)
        rc = ct_steps_write_u64(w, seq_index, (size_t)n);
    if (!rc)
        rc = ct_steps_write_u64(w, doc_index, (size_t)n);
    const char *names[CT_CORPUS_MAX_LANGS];
    for (size_t l = 0; l < nl; l++)
        names[l] = ct_corpus_lang_name(c, l);
    if (!rc && nl)
        rc = ct_langtab_write(w, names, nl, lang, (uint64_t)n);
    if (!rc) {
        ct_progress_update(prog, (double)got);
        json_t *summary = json_pack("{s:I, s:I, s:I}", "sequences", (json_int_t)got, "documents",
                                    (json_int_t)docs, "seq_len", (json_int_t)T);
        if (nl) { /* sequences per language, in the mixture's order */
            json_t *per = json_object();
            for (size_t l = 0; l < nl; l++) {
                json_int_t k = 0;
                for (long long i = 0; i < n; i++)
                    k += lang[i] == l;
                json_object_set_new(per, names[l], json_integer(k));
            }
            json_object_set_new(summary, "languages", per);
        }
        ct_step_set_summary(ctx, summary);
    }
    ct_corpus_close(c);
    ct_tok_free(tok);
    free(seq_index);
    free(doc_index);
    free(lang);
    return rc;
}

const ct_step_kind ct_step_tokenize_index = {
    .name = "tokenize_index",
    .version = 1,
    .summary = "tokenize the corpus into every sequence of seq_len tokens the recipe needs",
    .plan = plan_index,
    .run = run_index,
    .internal = 0,
    .bundle = CT_BUNDLE_NEVER,
};
