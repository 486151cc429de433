/* pretrain_tokens: corpus + tokenizer -> the packed pretraining stream
 * ("pretrain/tokens"; format in pipeline/steps/pretrain.h).
 *
 * Every document of the corpus (corpus.files, or corpus.mix's languages interleaved by
 * weight) is tokenized and followed by the end-of-text token
 * ("<|endoftext|>", the separator GPT-NeoX packs with), except the documents that the
 * val and test token shards were cut from: those are held out, so the ΔCE, annotation
 * and other evaluation steps never see text the model was trained on. The documents of
 * the train shards (the crosscoder's activations) stay in, as in the paper, where the
 * crosscoder reads the model's own pretraining distribution. Documents are numbered as
 * tokenize_index numbers them (every document of the corpus, in order, which is what
 * the shards' doc_index refers to; with corpus.mix both read the same language
 * mixture, whose order depends on the weights alone, so the numbers agree). */
#include "common/error.h"
#include "common/array.h"
#include "models/corpus/corpus.h"
#include "models/tokenizer/tokenizer.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/pretrain.h"
#include "pipeline/steps/shard.h"
#include "pipeline/steps/sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int plan_tokens(ct_plan *plan, const ct_recipe *recipe)
{
    size_t idx;
    if (!ct_recipe_get(recipe, "pretrain") || ct_plan_find(plan, "tokenizer", &idx) != 0 ||
        ct_plan_find(plan, "tokenize/index", &idx) != 0)
        return 0;
    ct_steps_budget b;
    json_t *corpus = NULL, *holdout = json_array();
    int rc = ct_steps_budget_of(recipe, &b);
    if (!rc)
        rc = ct_steps_corpus_sources(plan, recipe, &corpus);
    static const char *const splits[2] = {"val", "test"};
    long long counts[2] = {b.n_val, b.n_test};
    for (int s = 0; s < 2 && !rc; s++)
        for (size_t k = 0; k < ct_steps_n_shards(counts[s], b.per_shard); k++) {
            char label[64];
            snprintf(label, sizeof label, "tokenize/%s/%04zu", splits[s], k);
            json_array_append_new(holdout, json_string(label));
        }
    if (rc) {
        json_decref(corpus);
        json_decref(holdout);
        return rc;
    }
    json_t *params = ct_steps_corpus_params(recipe);
    json_object_set(params, "ctx", ct_recipe_get(recipe, "pretrain.model.ctx"));
    return ct_plan_add(plan, "pretrain_tokens", "pretrain/tokens", params,
                       json_pack("{s:o, s:s, s:o}", "corpus", corpus, "tokenizer", "tokenizer", "holdout", holdout));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The sorted doc_index of every held-out shard. */
static int held_out_docs(ct_step_ctx *ctx, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    uint64_t *docs = NULL;
    size_t len = 0;
    int rc = 0;
    for (size_t i = 0; i < ct_step_input_count(ctx, "holdout") && !rc; i++) {
        ct_tokshard s;
        if ((rc = ct_tokshard_read(ctx, "holdout", i, &s)))
            break;
        uint64_t *t = realloc(docs, (len + s.n_seq + 1) * sizeof *docs);
        if (!t)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        else {
            docs = t;
            memcpy(docs + len, s.doc_index, s.n_seq * sizeof *docs);
            len += s.n_seq;
        }
        ct_tokshard_free(&s);
    }
    if (rc) {
        free(docs);
        return rc;
    }
    if (len)
        qsort(docs, len, sizeof *docs, cmp_u64);
    *out = docs;
    *n = len;
    return 0;
}

static int run_tokens(ct_step_ctx *ctx)
{
    const char *label = ct_step_label(ctx);
    json_t *p = ct_step_params(ctx);
    long long T = json_integer_value(json_object_get(p, "ctx"));
    if (T < 2 || T > (1 << 20))
        return ct_error_set(CT_EINVAL, "%s: pretrain.model.ctx %lld is out of range", label, T);
    size_t nf = ct_step_input_count(ctx, "corpus");
    uint64_t *held = NULL;
    size_t n_held = 0;
    ct_tokenizer *tok = NULL;
    ct_corpus *c = NULL;
    int32_t *stream = NULL;
    uint64_t *row_doc = NULL;
    size_t n_stream = 0, cap_stream = 0, n_rows = 0, cap_rows = 0;
    int rc = held_out_docs(ctx, &held, &n_held);
    if (!rc)
        rc = ct_steps_load_tokenizer(ctx, "tokenizer", &tok);
    int32_t eos = rc ? -1 : ct_tok_token_id(tok, "<|endoftext|>");
    if (!rc && eos < 0)
        rc = ct_error_set(CT_EINVAL, "%s: the tokenizer has no <|endoftext|> token to separate documents", label);
    if (!rc)
        rc = ct_steps_corpus_open(ctx, "corpus", &c);
    ct_progress *prog = rc ? NULL : ct_step_progress(ctx, (double)nf, "file");
    uint64_t docs = 0, kept = 0;
    while (!rc) {
        const char *text;
        size_t len;
        int more = ct_corpus_next(c, &text, &len);
        if (more <= 0) {
            rc = more;
            break;
        }
        uint64_t doc = docs++;
        if (n_held && bsearch(&doc, held, n_held, sizeof *held, cmp_u64))
            continue;
        int32_t *ids = NULL;
        size_t nid = 0;
        if ((rc = ct_tok_encode(tok, text, len, &ids, &nid))) {
            const char *file;
            size_t line;
            ct_corpus_where(c, &file, &line);
            rc = ct_error_wrap(rc, "%s:%zu", file ? file : "?", line);
            break;
        }
        kept++;
        if (ct_array_grow((void **)&stream, &cap_stream, n_stream + nid + 1, sizeof *stream) ||
            ct_array_grow((void **)&row_doc, &cap_rows, (n_stream + nid + 1) / (size_t)T + 1, sizeof *row_doc))
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        for (size_t i = 0; i <= nid && !rc; i++) {
            if (n_stream == n_rows * (size_t)T) /* a row starts: remember its document */
                row_doc[n_rows++] = doc;
            stream[n_stream++] = i < nid ? ids[i] : eos;
        }
        free(ids);
        if (kept % 256 == 0) {
            ct_progress_update(prog, (double)ct_corpus_file_index(c));
            if (ct_step_interrupted(ctx))
                rc = ct_error_set(CT_EINTR, "interrupted");
        }
    }
    uint64_t rows = (uint64_t)n_stream / (uint64_t)T;
    if (!rc && rows < 2)
        rc = ct_error_set(CT_EINVAL, "%s: the corpus leaves %zu tokens for pretraining, fewer than two rows of "
                          "pretrain.model.ctx = %lld", label, n_stream, T);
    ct_blob_writer *w;
    if (!rc && !(rc = ct_step_output(ctx, &w)) && !(rc = ct_tokshard_write_header(w, (uint32_t)T, rows)) &&
        !(rc = ct_steps_write_i32(w, stream, (size_t)(rows * (uint64_t)T)))) {
        for (uint64_t r = 0; r < rows && !rc; r++)
            rc = ct_steps_write_u64(w, &r, 1);
        if (!rc)
            rc = ct_steps_write_u64(w, row_doc, (size_t)rows);
    }
    if (!rc) {
        ct_progress_update(prog, (double)nf);
        ct_step_set_summary(ctx, json_pack("{s:I, s:I, s:I, s:I, s:I}", "tokens", (json_int_t)(rows * (uint64_t)T),
                                           "rows", (json_int_t)rows, "documents", (json_int_t)kept, "held_out",
                                           (json_int_t)(docs - kept), "eos", (json_int_t)eos));
        ct_step_log(ctx, "%s: %llu tokens from %llu documents (%llu held out)", label,
                    (unsigned long long)(rows * (uint64_t)T), (unsigned long long)kept,
                    (unsigned long long)(docs - kept));
    }
    free(stream);
    free(row_doc);
    ct_corpus_close(c);
    ct_tok_free(tok);
    free(held);
    return rc;
}

const ct_step_kind ct_step_pretrain_tokens = {
    .name = "pretrain_tokens",
    .version = 1,
    .summary = "the packed pretraining token stream (documents + <|endoftext|>, val/test documents held out)",
    .plan = plan_tokens,
    .run = run_tokens,
    .internal = 0,
    .bundle = CT_BUNDLE_NEVER,
};
