/* tokenizer_train: corpus -> tokenizer.json ("tokenizer"), for recipes with a
 * `pretrain:` section, whose checkpoints have no tokenizer of their own. A byte-level
 * BPE trained on every document of corpus.files (models/tokenizer/train.h) with
 * pretrain.tokenizer.vocab_size and min_frequency. */
#include "common/error.h"
#include "models/corpus/corpus.h"
#include "models/tokenizer/train.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/shard.h"

#include <stdlib.h>

static int plan_tokenizer(ct_plan *plan, const ct_recipe *recipe)
{
    if (!ct_recipe_get(recipe, "pretrain") || !ct_recipe_get(recipe, "corpus"))
        return 0;
    if (!ct_steps_corpus_available(plan, recipe))
        return 0; /* the notes say where the corpus goes */
    json_t *corpus;
    int rc = ct_steps_corpus_sources(plan, recipe, &corpus);
    if (rc)
        return rc;
    json_t *params = ct_steps_corpus_params(recipe);
    json_object_set(params, "vocab_size", ct_recipe_get(recipe, "pretrain.tokenizer.vocab_size"));
    json_object_set(params, "min_frequency", ct_recipe_get(recipe, "pretrain.tokenizer.min_frequency"));
    return ct_plan_add(plan, "tokenizer_train", "tokenizer", params, json_pack("{s:o}", "corpus", corpus));
}

static int run_tokenizer(ct_step_ctx *ctx)
{
    json_t *p = ct_step_params(ctx);
    ct_corpus_format fmt;
    int rc = ct_corpus_format_parse(json_string_value(json_object_get(p, "format")), &fmt);
    if (rc)
        return rc;
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = (size_t)json_integer_value(json_object_get(p, "vocab_size"));
    o.min_frequency = (uint64_t)json_integer_value(json_object_get(p, "min_frequency"));
    size_t nf = ct_step_input_count(ctx, "corpus");
    const char **files = calloc(nf + 1, sizeof *files);
    if (!files)
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < nf; i++)
        files[i] = ct_step_input_path(ctx, "corpus", i);
    ct_tok_trainer *t = NULL;
    ct_corpus *c = NULL;
    rc = ct_tok_trainer_new(&o, &t);
    if (!rc)
        rc = ct_corpus_open(files, nf, fmt, json_string_value(json_object_get(p, "text_field")), &c);
    long long docs = 0;
    while (!rc) {
        const char *text;
        size_t len;
        int more = ct_corpus_next(c, &text, &len);
        if (more <= 0) {
            rc = more;
            break;
        }
        rc = ct_tok_trainer_feed(t, text, len);
        if (++docs % 1024 == 0 && ct_step_interrupted(ctx))
            rc = ct_error_set(CT_EINTR, "interrupted");
    }
    char *json = NULL;
    size_t len = 0;
    if (!rc)
        rc = ct_tok_trainer_train(t);
    if (!rc)
        rc = ct_tok_trainer_json(t, &json, &len);
    ct_blob_writer *w;
    if (!rc && !(rc = ct_step_output(ctx, &w)))
        rc = ct_blob_write(w, json, len);
    if (!rc) {
        ct_tok_train_stats st;
        ct_tok_trainer_stats(t, &st);
        ct_step_set_summary(ctx, json_pack("{s:I, s:I, s:I}", "documents", (json_int_t)docs, "vocab",
                                           (json_int_t)st.vocab, "merges", (json_int_t)st.merges));
    }
    free(json);
    ct_corpus_close(c);
    ct_tok_trainer_free(t);
    free(files);
    return rc;
}

const ct_step_kind ct_step_tokenizer_train = {
    .name = "tokenizer_train",
    .version = 1,
    .summary = "train a byte-level BPE tokenizer.json on the corpus (recipes with pretrain)",
    .plan = plan_tokenizer,
    .run = run_tokenizer,
    .internal = 0,
    .bundle = CT_BUNDLE_ARTIFACT,
};
