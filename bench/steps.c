/* Throughput of the corpus-to-crosscoder steps on a synthetic world: a random
 * GPT-NeoX checkpoint pair (d=256, 4 blocks) with a BPE tokenizer trained on the shipped
 * English sample, 128-token sequences. Prints key=value figures:
 *   tokenize_seq_s   sequences per second of tokenize_index
 *   extract_rows_s   activation rows per second of extract (one checkpoint, CPU)
 *   source_rows_s    shuffled training rows per second read from the cached shards
 *                    (M=2, bf16 -> fp32, scaled), the crosscoder's input path
 *   train_steps_s    crosscoder steps per second (H=2048, batch 1024)
 * Usage: bench_steps [TRAIN_SEQUENCES (default 512)] */
#include "common/error.h"
#include "common/progress.h"
#include "models/checkpoint/safetensors.h"
#include "models/corpus/corpus.h"
#include "models/tokenizer/train.h"
#include "pipeline/plan.h"
#include "pipeline/recipe/recipe.h"
#include "pipeline/runner.h"
#include "pipeline/step.h"
#include "pipeline/steps/actsource.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define D 256
#define LAYERS 4
#define FF 1024

static int die(const char *what)
{
    fprintf(stderr, "bench_steps: %s: %s\n", what, ct_error_message());
    exit(1);
}

static float gauss(uint64_t *s)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        u[i] = ((double)((x ^ (x >> 31)) >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static void checkpoint(const char *dir, int vocab, uint64_t seed)
{
    char path[4200];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "{\"architectures\": [\"GPTNeoXForCausalLM\"], \"hidden_act\": \"gelu\", \"hidden_size\": %d,"
            " \"intermediate_size\": %d, \"num_attention_heads\": 8, \"num_hidden_layers\": %d,"
            " \"max_position_embeddings\": 256, \"rotary_pct\": 0.25, \"rotary_emb_base\": 10000,"
            " \"layer_norm_eps\": 1e-5, \"use_parallel_residual\": true, \"tie_word_embeddings\": false,"
            " \"vocab_size\": %d}\n",
            D, FF, LAYERS, vocab);
    fclose(f);
    static const struct {
        const char *fmt;
        int r, c; /* 0: vocab; negative: multiples of D */
        float mean, std;
    } spec[] = {{"input_layernorm.weight", D, 0, 1, 0.1f}, {"input_layernorm.bias", D, 0, 0, 0.1f},
                {"post_attention_layernorm.weight", D, 0, 1, 0.1f},
                {"post_attention_layernorm.bias", D, 0, 0, 0.1f},
                {"attention.query_key_value.weight", 3 * D, D, 0, 0.06f},
                {"attention.query_key_value.bias", 3 * D, 0, 0, 0.02f},
                {"attention.dense.weight", D, D, 0, 0.06f}, {"attention.dense.bias", D, 0, 0, 0.02f},
                {"mlp.dense_h_to_4h.weight", FF, D, 0, 0.06f}, {"mlp.dense_h_to_4h.bias", FF, 0, 0, 0.02f},
                {"mlp.dense_4h_to_h.weight", D, FF, 0, 0.03f}, {"mlp.dense_4h_to_h.bias", D, 0, 0, 0.02f}};
    enum { NS = sizeof spec / sizeof *spec, NT = NS * LAYERS + 4 };
    ct_st_tensor t[NT];
    char names[NT][96];
    int64_t shapes[NT][2];
    float *data[NT];
    uint64_t rng = seed;
    for (int i = 0; i < NT; i++) {
        int r, c;
        float mean = 0, std = 0.1f;
        if (i < NS * LAYERS) {
            snprintf(names[i], sizeof names[i], "gpt_neox.layers.%d.%s", i / NS, spec[i % NS].fmt);
            r = spec[i % NS].r;
            c = spec[i % NS].c;
            mean = spec[i % NS].mean;
            std = spec[i % NS].std;
        } else {
            int k = i - NS * LAYERS;
            static const char *const last[4] = {"gpt_neox.embed_in.weight", "gpt_neox.final_layer_norm.weight",
                                                "gpt_neox.final_layer_norm.bias", "embed_out.weight"};
            snprintf(names[i], sizeof names[i], "%s", last[k]);
            r = k == 0 || k == 3 ? vocab : D;
            c = k == 0 || k == 3 ? D : 0;
            mean = k == 1 ? 1.0f : 0.0f;
            std = k == 0 ? 1.0f : 0.05f;
        }
        shapes[i][0] = r;
        shapes[i][1] = c;
        size_t n = (size_t)r * (size_t)(c ? c : 1);
        data[i] = malloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++)
            data[i][j] = mean + std * gauss(&rng);
        t[i] = (ct_st_tensor){names[i], CT_DT_F32, c ? 2 : 1, shapes[i], data[i]};
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (ct_safetensors_write(path, t, NT, NULL, NULL, 0))
        die("write checkpoint");
    for (int i = 0; i < NT; i++)
        free(data[i]);
}

static double g_source_rows_s;

/* A probe step: reads one shuffled epoch of the train shards through the source. */
static int probe_run(ct_step_ctx *ctx)
{
    const float scale[2] = {1.0f, 1.0f};
    ct_cc_source src;
    int rc = ct_steps_actsource_open(ctx, "train", 2, scale, 1, 1, &src);
    if (rc)
        return rc;
    uint64_t n = ct_steps_actsource_rows(&src);
    float *rows = malloc((size_t)1024 * 2 * D * sizeof(float));
    double t0 = ct_seconds();
    for (uint64_t done = 0; done + 1024 <= n && !rc; done += 1024)
        rc = src.next(src.ctx, rows, 1024);
    g_source_rows_s = (double)(n / 1024 * 1024) / (ct_seconds() - t0);
    free(rows);
    ct_cc_source_close(&src);
    return rc;
}

static const ct_step_kind probe_kind = {
    .name = "bench_source_probe", .version = 1, .summary = "bench", .plan = NULL, .run = probe_run,
    .internal = 1, .bundle = CT_BUNDLE_NEVER,
};

static double kind_wall(ct_cache *cache, ct_plan *plan, const char *kind, size_t *count)
{
    double wall = 0;
    *count = 0;
    for (size_t i = 0; i < ct_plan_size(plan); i++) {
        const ct_plan_step *s = ct_plan_get(plan, i);
        json_t *rec;
        if (!s->kind || strcmp(s->kind->name, kind) != 0 || ct_cache_get(cache, s->key, &rec))
            continue;
        wall += json_number_value(json_object_get(json_object_get(rec, "time"), "wall_s"));
        (*count)++;
        json_decref(rec);
    }
    return wall;
}

int main(int argc, char **argv)
{
    long train_seqs = argc > 1 ? atol(argv[1]) : 512;
    char dir[] = "/tmp/ct-bench-steps-XXXXXX", path[4200];
    if (!mkdtemp(dir))
        return die("mkdtemp");
    /* corpus: paragraphs of the shipped sample; tokenizer trained on them */
    const char *sample = CT_SOURCE_ROOT "/tests/fixtures/corpus/en_sample.txt.zst";
    ct_corpus *c;
    if (ct_corpus_open(&sample, 1, CT_CORPUS_TEXT, NULL, &c))
        return die("corpus");
    snprintf(path, sizeof path, "%s/corpus.txt", dir);
    FILE *f = fopen(path, "w");
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 2048;
    ct_tok_trainer *tt;
    ct_tok_trainer_new(&o, &tt);
    const char *text;
    size_t len;
    long docs = 0;
    while (docs < 3 * train_seqs + 2000 && ct_corpus_next(c, &text, &len) > 0) {
        if (len < 800 || memchr(text, '\0', len))
            continue;
        fwrite(text, 1, len, f);
        fputc('\n', f);
        ct_tok_trainer_feed(tt, text, len);
        docs++;
    }
    fclose(f);
    ct_corpus_close(c);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (ct_tok_trainer_train(tt) || ct_tok_trainer_save(tt, path))
        return die("tokenizer");
    ct_tok_trainer_free(tt);
    for (int m = 0; m < 2; m++) {
        snprintf(path, sizeof path, "%s/ck%d", dir, m);
        checkpoint(path, 2048, 11 + (uint64_t)m);
    }
    snprintf(path, sizeof path, "%s/recipe.yaml", dir);
    f = fopen(path, "w");
    fprintf(f,
            "name: bench-steps\n"
            "model: {family: gpt-neox, tokenizer: tokenizer.json, checkpoints: [{name: a, source: ck0, "
            "tokens: 1}, {name: b, source: ck1, tokens: 2}]}\n"
            "layer: 2\n"
            "corpus: {files: [corpus.txt], seq_len: 128, train_sequences: %ld, val_sequences: 16, "
            "test_sequences: 16, shard_sequences: 64}\n"
            "crosscoder: {dict_size: 2048, batch_size: 1024, tokens: %ld, seeds: [1], log_every: 1000}\n"
            "tuples: [[a, b]]\n",
            train_seqs, train_seqs * 127 / 1024 * 1024);
    fclose(f);

    ct_steps_register_builtin();
    ct_step_register(&probe_kind);
    ct_recipe *r;
    ct_cache *cache;
    ct_plan *plan;
    ct_cache_options co = CT_CACHE_OPTIONS_INIT;
    char cdir[4200];
    snprintf(cdir, sizeof cdir, "%s/cache", dir);
    co.dir = cdir;
    if (ct_recipe_load(path, NULL, &r) || ct_cache_open(&co, &cache) || ct_plan_build(r, cache, &plan))
        return die("plan");
    json_t *tr[2];
    for (int m = 0; m < 2; m++) {
        tr[m] = json_array();
        for (long k = 0; k < (train_seqs + 63) / 64; k++) {
            char label[64];
            snprintf(label, sizeof label, "extract/%c/train/%04ld", 'a' + m, k);
            json_array_append_new(tr[m], json_string(label));
        }
    }
    if (ct_plan_add(plan, "bench_source_probe", "probe", NULL,
                    json_pack("{s:o, s:o}", "train_0", tr[0], "train_1", tr[1])))
        return die("probe");
    ct_run_options ro = CT_RUN_OPTIONS_INIT;
    ro.quiet = 1;
    ct_run_stats st;
    if (ct_run(plan, cache, &ro, &st))
        return die("run");
    size_t n;
    double w = kind_wall(cache, plan, "tokenize_index", &n);
    printf("tokenize_seq_s=%.0f\n", (double)(train_seqs + 32) / w);
    w = kind_wall(cache, plan, "extract", &n);
    printf("extract_rows_s=%.0f\n", (double)(train_seqs + 16) * 127 * 2 / w);
    printf("source_rows_s=%.0f\n", g_source_rows_s);
    w = kind_wall(cache, plan, "train", &n);
    printf("train_steps_s=%.2f\n", (double)(train_seqs * 127 / 1024) / w);
    ct_plan_free(plan);
    ct_cache_close(cache);
    ct_recipe_free(r);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
