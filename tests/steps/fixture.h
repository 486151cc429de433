/* A tiny world for the step kinds' tests, built in a temp directory: a corpus of
 * paragraphs from the shipped English sample, a BPE tokenizer trained on it, two
 * random GPT-NeoX checkpoints of one shape (two seeds) whose vocabulary matches the
 * tokenizer, and a recipe over them. */
#ifndef CT_TEST_STEPS_FIXTURE_H
#define CT_TEST_STEPS_FIXTURE_H

#include "cache/cache.h"
#include "common/error.h"
#include "models/checkpoint/safetensors.h"
#include "models/corpus/corpus.h"
#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/train.h"
#include "pipeline/plan.h"
#include "pipeline/recipe/recipe.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#define FX_DOCS 700   /* paragraphs written to the corpus */
#define FX_MIN_BYTES 160
#define FX_D 32
#define FX_LAYERS 2
#define FX_I 64

typedef struct {
    char dir[PATH_MAX];
    char corpus[PATH_MAX + 32], tok[PATH_MAX + 32], recipe[PATH_MAX + 32], cache[PATH_MAX + 32];
    char ck[2][PATH_MAX + 32];
    int vocab; /* tokenizer vocabulary = model vocabulary */
} fx_env;

typedef struct {
    char name[128];
    int ndim;
    int64_t shape[2];
    float *data;
} fx_tensor;

static inline void fx_add(fx_tensor *t, size_t *n, uint64_t *rng, const char *name, int64_t r, int64_t c, float mean,
                   float std)
{
    fx_tensor *x = &t[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->ndim = c ? 2 : 1;
    x->shape[0] = r;
    x->shape[1] = c;
    size_t numel = (size_t)r * (size_t)(c ? c : 1);
    x->data = malloc(numel * sizeof(float));
    for (size_t i = 0; i < numel; i++)
        x->data[i] = mean + std * (float)ct_test_normal(rng);
}

/* A random GPT-NeoX checkpoint (parallel residual, rotary 0.5) with `vocab` rows. */
static inline void fx_checkpoint(const char *dir, int vocab, uint64_t seed)
{
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"architectures\": [\"GPTNeoXForCausalLM\"], \"model_type\": \"gpt_neox\", \"hidden_act\": \"gelu\","
            " \"hidden_size\": %d, \"intermediate_size\": %d, \"num_attention_heads\": 4,"
            " \"num_hidden_layers\": %d, \"max_position_embeddings\": 64, \"rotary_pct\": 0.5,"
            " \"rotary_emb_base\": 10000, \"layer_norm_eps\": 1e-5, \"use_parallel_residual\": true,"
            " \"tie_word_embeddings\": false, \"vocab_size\": %d, \"bos_token_id\": 0, \"eos_token_id\": 0}\n",
            FX_D, FX_I, FX_LAYERS, vocab);
    fclose(f);
    fx_tensor t[64];
    size_t n = 0;
    uint64_t rng = seed;
    char name[128];
    fx_add(t, &n, &rng, "gpt_neox.embed_in.weight", vocab, FX_D, 0, 1.0f);
    for (int l = 0; l < FX_LAYERS; l++) {
#define L(fmt) (snprintf(name, sizeof name, "gpt_neox.layers.%d." fmt, l), name)
        fx_add(t, &n, &rng, L("input_layernorm.weight"), FX_D, 0, 1, 0.1f);
        fx_add(t, &n, &rng, L("input_layernorm.bias"), FX_D, 0, 0, 0.1f);
        fx_add(t, &n, &rng, L("post_attention_layernorm.weight"), FX_D, 0, 1, 0.1f);
        fx_add(t, &n, &rng, L("post_attention_layernorm.bias"), FX_D, 0, 0, 0.1f);
        fx_add(t, &n, &rng, L("attention.query_key_value.weight"), 3 * FX_D, FX_D, 0, 0.2f);
        fx_add(t, &n, &rng, L("attention.query_key_value.bias"), 3 * FX_D, 0, 0, 0.1f);
        fx_add(t, &n, &rng, L("attention.dense.weight"), FX_D, FX_D, 0, 0.2f);
        fx_add(t, &n, &rng, L("attention.dense.bias"), FX_D, 0, 0, 0.1f);
        fx_add(t, &n, &rng, L("mlp.dense_h_to_4h.weight"), FX_I, FX_D, 0, 0.2f);
        fx_add(t, &n, &rng, L("mlp.dense_h_to_4h.bias"), FX_I, 0, 0, 0.1f);
        fx_add(t, &n, &rng, L("mlp.dense_4h_to_h.weight"), FX_D, FX_I, 0, 0.2f);
        fx_add(t, &n, &rng, L("mlp.dense_4h_to_h.bias"), FX_D, 0, 0, 0.1f);
#undef L
    }
    fx_add(t, &n, &rng, "gpt_neox.final_layer_norm.weight", FX_D, 0, 1, 0.1f);
    fx_add(t, &n, &rng, "gpt_neox.final_layer_norm.bias", FX_D, 0, 0, 0.1f);
    fx_add(t, &n, &rng, "embed_out.weight", vocab, FX_D, 0, 0.2f);
    ct_st_tensor st[64];
    for (size_t i = 0; i < n; i++)
        st[i] = (ct_st_tensor){t[i].name, CT_DT_F32, t[i].ndim, t[i].shape, t[i].data};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_int_eq(ct_safetensors_write(path, st, n, NULL, NULL, 0), 0);
    for (size_t i = 0; i < n; i++)
        free(t[i].data);
}

/* The corpus (FX_DOCS paragraphs of at least FX_MIN_BYTES bytes), the tokenizer and
 * two checkpoints. */
static inline void fx_setup(fx_env *e, const char *tag)
{
    ct_test_tmpdir(e->dir, sizeof e->dir, tag);
    snprintf(e->corpus, sizeof e->corpus, "%s/corpus.txt", e->dir);
    snprintf(e->tok, sizeof e->tok, "%s/tokenizer.json", e->dir);
    snprintf(e->recipe, sizeof e->recipe, "%s/recipe.yaml", e->dir);
    snprintf(e->cache, sizeof e->cache, "%s/cache", e->dir);
    char src[PATH_MAX];
    ct_test_src(src, sizeof src, "tests/fixtures/corpus/en_sample.txt.zst");
    const char *files[1] = {src};
    ct_corpus *c;
    ck_assert_int_eq(ct_corpus_open(files, 1, CT_CORPUS_TEXT, NULL, &c), 0);
    FILE *f = fopen(e->corpus, "w");
    ck_assert_ptr_nonnull(f);
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 400;
    ct_tok_trainer *t;
    ck_assert_int_eq(ct_tok_trainer_new(&o, &t), 0);
    int docs = 0;
    while (docs < FX_DOCS) {
        const char *text;
        size_t len;
        int more = ct_corpus_next(c, &text, &len);
        ck_assert_int_ge(more, 0);
        if (!more)
            break;
        if (len < FX_MIN_BYTES || memchr(text, '\0', len))
            continue;
        fwrite(text, 1, len, f);
        fputc('\n', f);
        ck_assert_int_eq(ct_tok_trainer_feed(t, text, len), 0);
        docs++;
    }
    ck_assert_int_eq(docs, FX_DOCS);
    fclose(f);
    ct_corpus_close(c);
    ck_assert_int_eq(ct_tok_trainer_train(t), 0);
    ck_assert_int_eq(ct_tok_trainer_save(t, e->tok), 0);
    ct_tok_trainer_free(t);
    ct_tokenizer *tok;
    ck_assert_int_eq(ct_tok_load(e->tok, &tok), 0);
    size_t v;
    ck_assert_int_eq(ct_tok_vocab_size(tok, &v), 0);
    ct_tok_free(tok);
    e->vocab = (int)v;
    for (int m = 0; m < 2; m++) {
        snprintf(e->ck[m], sizeof e->ck[m], "%s/ck%c", e->dir, 'A' + m);
        fx_checkpoint(e->ck[m], e->vocab, 1000 + (uint64_t)m);
    }
}

/* The test recipe; `extra` is appended (e.g. overrides of corpus.files). */
static const char fx_recipe_text[] =
    "name: steps-test\n"
    "model:\n"
    "  family: gpt-neox\n"
    "  tokenizer: tokenizer.json\n"
    "  checkpoints:\n"
    "    - {name: a, source: ckA, tokens: 1000}\n"
    "    - {name: b, source: ckB, tokens: 2000}\n"
    "layer: 1\n"
    "corpus:\n"
    "  files: [%s]\n"
    "  seq_len: 16\n"
    "  val_sequences: 8\n"
    "  test_sequences: 4\n"
    "  shard_sequences: 64\n"
    "  seed: 5\n"
    "activations: {norm_batches: 4, norm_batch_sequences: 4}\n"
    "crosscoder:\n"
    "  dict_size: 64\n"
    "  batch_size: 64\n"
    "  tokens: 4800\n"
    "  lr: 1e-3\n"
    "  log_every: 15\n"
    "  seeds: [1]\n"
    "tuples:\n"
    "  - [a, b]\n";

static inline void fx_write_recipe(fx_env *e, const char *files)
{
    FILE *f = fopen(e->recipe, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, fx_recipe_text, files);
    fclose(f);
}

/* The recipe of `e`, its cache and its plan, read back through the library. */
typedef struct {
    ct_recipe *recipe;
    ct_cache *cache;
    ct_plan *plan;
} fx_world;

static inline void fx_world_open(fx_world *w, const fx_env *e, const char *set)
{
    ct_steps_register_builtin();
    ct_recipe_options ro = CT_RECIPE_OPTIONS_INIT;
    const char *sets[1] = {set};
    if (set) {
        ro.sets = sets;
        ro.n_sets = 1;
    }
    ck_assert_msg(ct_recipe_load(e->recipe, &ro, &w->recipe) == 0, "%s", ct_error_message());
    ct_cache_options co = CT_CACHE_OPTIONS_INIT;
    co.dir = e->cache;
    ck_assert_msg(ct_cache_open(&co, &w->cache) == 0, "%s", ct_error_message());
    ck_assert_msg(ct_plan_build(w->recipe, w->cache, &w->plan) == 0, "%s", ct_error_message());
}

static inline void fx_world_close(fx_world *w)
{
    ct_plan_free(w->plan);
    ct_cache_close(w->cache);
    ct_recipe_free(w->recipe);
}

/* Writes the first `n` paragraphs of at least FX_MIN_BYTES bytes of the shipped corpus
 * file `rel` (relative to the source tree) to `path`, one per line. */
static inline void fx_paragraphs(const char *rel, const char *path, int n)
{
    char src[PATH_MAX];
    const char *files[1] = {ct_test_src(src, sizeof src, rel)};
    ct_corpus *c;
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ct_corpus_open(files, 1, CT_CORPUS_TEXT, NULL, &c), 0);
    const char *text;
    size_t len;
    int docs = 0;
    while (docs < n && ct_corpus_next(c, &text, &len) == 1)
        if (len >= FX_MIN_BYTES && !memchr(text, '\0', len)) {
            fprintf(f, "%.*s\n", (int)len, text);
            docs++;
        }
    ck_assert_int_eq(docs, n);
    fclose(f);
    ct_corpus_close(c);
}

#endif
