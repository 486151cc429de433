/* Disk and compute estimate of a recipe (see estimate.h). */
#include "pipeline/estimate.h"
#include "common/error.h"
#include "models/checkpoint/checkpoint.h"
#include "pipeline/steps/shard.h"

#include <stdlib.h>
#include <string.h>

/* The paper's models (METHOD §1, §8), for checkpoints that are not downloaded yet.
 * Shapes as in their config.json files. */
typedef struct {
    const char *name, *repo_prefix, *family;
    int n_layer, d, vocab, intermediate, tied;
} paper_model;

static const paper_model paper_models[] = {
    {"pythia-1b", "EleutherAI/pythia-1b", "gpt-neox", 16, 2048, 50304, 8192, 0},
    {"OLMo-1B-0724-hf", "allenai/OLMo-1B", "olmo", 16, 2048, 50304, 8192, 1},
    {"bloom-1b1", "bigscience/bloom-1b1", "bloom", 24, 1536, 250880, 6144, 1},
};

/* Prefix tokens assumed per task example (BLiMP, CLAMS and MultiBLiMP prefixes are
 * short sentences). */
#define EST_PREFIX_TOKENS 16
/* Examples per task when relie.max_examples is 0 (all): BLiMP's 1000 pairs. */
#define EST_ALL_EXAMPLES 1000

typedef struct {
    const char *family;
    int n_layer, d, vocab, intermediate, tied;
} shape;

/* Parameters of one decoder block. GPT-NeoX and BLOOM: fused QKV and output projection
 * with biases (4d^2 + 4d), a 2-matrix MLP with biases, two LayerNorms. OLMo-1: no
 * biases, SwiGLU (three d x I matrices), non-parametric LayerNorm. */
static double block_params(const shape *s)
{
    double d = s->d, I = s->intermediate;
    if (strcmp(s->family, "olmo") == 0)
        return 4 * d * d + 3 * d * I;
    return 4 * d * d + 4 * d + 2 * d * I + I + d + 4 * d;
}

static double all_params(const shape *s)
{
    double emb = (double)s->vocab * s->d * (s->tied ? 1 : 2);
    double norms = strcmp(s->family, "olmo") == 0 ? 0 : 2.0 * s->d * (strcmp(s->family, "bloom") == 0 ? 2 : 1);
    return s->n_layer * block_params(s) + emb + norms;
}

static const char *arch_family(ct_arch a)
{
    return a == CT_ARCH_BLOOM ? "bloom" : a == CT_ARCH_OLMO ? "olmo" : "gpt-neox";
}

static long long get_ll(const ct_recipe *r, const char *path)
{
    json_t *v = ct_recipe_get(r, path);
    return json_is_integer(v) ? (long long)json_integer_value(v) : (long long)json_number_value(v);
}

/* The shape of the recipe's first checkpoint: its config.json when present, the
 * pretrain section, else the table. */
static int model_shape(const ct_recipe *r, shape *s, ct_estimate *e)
{
    const char *family = json_string_value(ct_recipe_get(r, "model.family"));
    const char *src = json_string_value(ct_recipe_get(r, "model.checkpoints.0.source"));
    if (!family || !src)
        return ct_error_set(CT_EINVAL, "%s: no model.checkpoints to estimate", ct_recipe_path(r));
    if (strncmp(src, "pretrain:", 9) == 0) {
        s->family = "gpt-neox";
        s->n_layer = (int)get_ll(r, "pretrain.model.layers");
        s->d = (int)get_ll(r, "pretrain.model.hidden");
        s->intermediate = (int)get_ll(r, "pretrain.model.intermediate");
        if (s->intermediate == 0)
            s->intermediate = 4 * s->d;
        s->vocab = (int)get_ll(r, "pretrain.tokenizer.vocab_size");
        s->tied = 0;
        snprintf(e->shape_source, sizeof e->shape_source, "pretrain.model");
        return 0;
    }
    char *path = NULL, *dir = NULL;
    int rc = ct_recipe_resolve_path(r, "model.checkpoints.0.source", &path);
    if (rc)
        return rc;
    if (ct_ckpt_resolve(path, &dir) == 0) {
        size_t n = strlen(dir) + 16;
        char *cfg_path = malloc(n);
        ct_model_config cfg;
        if (!cfg_path)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        else {
            snprintf(cfg_path, n, "%s/config.json", dir);
            rc = ct_ckpt_parse_config(cfg_path, &cfg);
        }
        if (!rc) {
            s->family = arch_family(cfg.arch);
            s->n_layer = cfg.n_layer;
            s->d = cfg.hidden;
            s->vocab = cfg.vocab;
            s->intermediate = cfg.intermediate;
            s->tied = cfg.tie_embeddings;
            snprintf(e->shape_source, sizeof e->shape_source, "config.json of %s", src);
        }
        free(cfg_path);
        free(dir);
        free(path);
        return rc;
    }
    ct_error_clear(); /* not downloaded: the table below */
    free(path);
    const paper_model *m = NULL;
    const char *repo = strncmp(src, "hf:", 3) == 0 ? src + 3 : NULL;
    size_t n_models = sizeof paper_models / sizeof *paper_models;
    for (size_t i = 0; repo && !m && i < n_models; i++)
        if (strncmp(repo, paper_models[i].repo_prefix, strlen(paper_models[i].repo_prefix)) == 0)
            m = &paper_models[i];
    if (m)
        snprintf(e->shape_source, sizeof e->shape_source, "table: %s (checkpoint not downloaded)", m->name);
    for (size_t i = 0; !m && i < n_models; i++)
        if (strcmp(family, paper_models[i].family) == 0) {
            m = &paper_models[i];
            snprintf(e->shape_source, sizeof e->shape_source, "table: %s, the paper's %s model (assumed)",
                     m->name, family);
        }
    if (!m)
        return ct_error_set(CT_EINVAL, "%s: no shape known for model.family '%s'", ct_recipe_path(r), family);
    *s = (shape){m->family, m->n_layer, m->d, m->vocab, m->intermediate, m->tied};
    return 0;
}

static double tokshard_bytes(long long n_seq, long long seq_len)
{
    return CT_TOKSHARD_HEADER + (double)n_seq * seq_len * 4 + (double)n_seq * 16;
}

static double actshard_bytes(long long n_seq, long long seq_len, int d)
{
    uint64_t rows = (uint64_t)n_seq * (uint64_t)(seq_len - 1);
    return (double)ct_actshard_data_offset(rows) + (double)rows * d * 2;
}

/* Sum over the shards of a split of `n` sequences, `per` to a shard. */
static double split_bytes(long long n, long long per, double (*one)(long long, long long, int), long long T,
                          int d)
{
    long long full = n / per, rest = n % per;
    return (double)full * one(per, T, d) + (rest ? one(rest, T, d) : 0);
}

static double tok_one(long long n, long long T, int d)
{
    (void)d;
    return tokshard_bytes(n, T);
}

static double act_one(long long n, long long T, int d) { return actshard_bytes(n, T, d); }

/* Forward FLOPs per token of `blocks` decoder blocks at context `ctx`: 2 per weight
 * (multiply-add) plus the attention scores and their weighted sum, 2 * ctx * d per
 * block (Kaplan et al. 2020, "Scaling laws", table 1). */
static double blocks_flops(const shape *s, int blocks, double ctx)
{
    return blocks * (2 * block_params(s) + 2 * ctx * s->d);
}

int ct_estimate_recipe(const ct_recipe *r, const ct_estimate_options *opts, ct_estimate *e)
{
    ct_estimate_options o = CT_ESTIMATE_OPTIONS_INIT;
    if (opts)
        o = *opts;
    memset(e, 0, sizeof *e);
    if (!ct_recipe_get(r, "model") || !ct_recipe_get(r, "corpus"))
        return ct_error_set(CT_EINVAL, "%s: nothing to estimate without model and corpus", ct_recipe_path(r));
    shape s = {0};
    int rc = model_shape(r, &s, e);
    ct_steps_budget b;
    if (!rc)
        rc = ct_steps_budget_of(r, &b);
    if (rc)
        return rc;
    e->n_layer = s.n_layer;
    e->d = s.d;
    e->vocab = s.vocab;
    e->intermediate = s.intermediate;
    e->layer = (int)get_ll(r, "layer");
    e->params = all_params(&s);
    json_t *tuples = ct_recipe_get(r, "tuples");
    size_t n_seeds = json_array_size(ct_recipe_get(r, "crosscoder.seeds"));
    e->checkpoints = (long long)json_array_size(ct_recipe_get(r, "model.checkpoints"));
    e->crosscoders = (long long)(json_array_size(tuples) * n_seeds);
    e->seq_len = b.seq_len;
    e->train_sequences = b.n_train;
    e->val_sequences = b.n_val;
    e->test_sequences = b.n_test;
    e->train_shards = (long long)ct_steps_n_shards(b.n_train, b.per_shard);
    e->val_shards = (long long)ct_steps_n_shards(b.n_val, b.per_shard);
    e->train_rows = b.n_train * (b.seq_len - 1);
    e->val_rows = b.n_val * (b.seq_len - 1);

    /* Disk. Token shards: tokenize/index holds every sequence, the split shards the
     * same again. Activations: train and val shards of every checkpoint (extract). */
    long long T = b.seq_len;
    e->tokens_bytes = tokshard_bytes(b.n_train + b.n_val + b.n_test, T) +
                      split_bytes(b.n_train, b.per_shard, tok_one, T, 0) +
                      split_bytes(b.n_val, b.per_shard, tok_one, T, 0) +
                      split_bytes(b.n_test, b.per_shard, tok_one, T, 0);
    e->act_shard_bytes = actshard_bytes(b.per_shard, T, s.d);
    e->act_train_bytes = split_bytes(b.n_train, b.per_shard, act_one, T, s.d);
    e->act_val_bytes = split_bytes(b.n_val, b.per_shard, act_one, T, s.d);
    e->act_checkpoint_bytes = e->act_train_bytes + e->act_val_bytes;
    e->act_bytes = e->act_checkpoint_bytes * (double)e->checkpoints;

    /* Crosscoders: W_enc [M,d,H], b_enc [H], W_dec [H,M,d], b_dec [M,d] in fp32. The
     * resume state holds the weights and Adam's two moments, in two slots. Training
     * FLOPs per step: encoder and decoder are each 2*B*M*d*H forward; the backward pass
     * costs twice the forward (gradients of inputs and weights): 12*B*M*d*H. */
    double H = (double)get_ll(r, "crosscoder.dict_size"), B = (double)get_ll(r, "crosscoder.batch_size");
    long long steps = get_ll(r, "crosscoder.tokens") / (long long)B;
    e->steps_per_crosscoder = steps;
    e->train_step_flops = 12 * B * 2 * s.d * H;
    size_t t;
    json_t *tuple;
    json_array_foreach(tuples, t, tuple) {
        double M = (double)json_array_size(tuple);
        double params = 2 * M * s.d * H + H + M * s.d;
        e->crosscoder_bytes += (double)n_seeds * params * 4;
        e->train_state_bytes += (double)n_seeds * 2 * 3 * params * 4;
        e->train_flops += (double)n_seeds * (double)steps * 12 * B * M * s.d * H;
    }
    e->total_bytes = e->tokens_bytes + e->act_bytes + e->crosscoder_bytes + e->train_state_bytes;

    /* Extraction runs blocks 0..layer on every train and val sequence of every
     * checkpoint (nothing above the captured block). */
    int below = e->layer + 1 < s.n_layer ? e->layer + 1 : s.n_layer;
    double ext_tokens = (double)(b.n_train + b.n_val) * (double)T;
    e->extract_checkpoint_flops = ext_tokens * blocks_flops(&s, below, (double)T);
    e->extract_flops = e->extract_checkpoint_flops * (double)e->checkpoints;

    /* Tasks: accuracy is one full forward per example and checkpoint. Attribution, per
     * crosscoder, task and example: every checkpoint of the tuple runs up to the block,
     * the crosscoder encodes; then per checkpoint and integrated-gradients step the
     * blocks above and the head run forward and backward (3x a forward) through the
     * decoded latents. */
    e->tasks = (long long)json_array_size(ct_recipe_get(r, "tasks"));
    long long max_ex = get_ll(r, "relie.max_examples");
    e->examples_per_task = max_ex > 0 ? max_ex : EST_ALL_EXAMPLES;
    double P = EST_PREFIX_TOKENS, ex = (double)e->tasks * (double)e->examples_per_task;
    double full = blocks_flops(&s, s.n_layer, P) + 2.0 * s.d * s.vocab;
    e->accuracy_flops = (double)e->checkpoints * ex * P * full;
    double above = blocks_flops(&s, s.n_layer - below, P) + 2.0 * s.d * s.vocab;
    double ig = (double)get_ll(r, "relie.ig_steps");
    json_array_foreach(tuples, t, tuple) {
        double M = (double)json_array_size(tuple);
        double per_example = M * P * blocks_flops(&s, below, P) + P * 2 * M * s.d * H +
                             M * ig * 3 * P * (above + 2.0 * s.d * H);
        e->attribute_flops += (double)n_seeds * ex * per_example;
    }
    e->total_flops = e->extract_flops + e->train_flops + e->accuracy_flops + e->attribute_flops;

    int cuda = o.device && strcmp(o.device, "cuda") == 0;
    if (o.gflops > 0) {
        e->gflops = o.gflops;
        snprintf(e->gflops_source, sizeof e->gflops_source, "given with --gflops");
    } else if (cuda) {
        e->gflops = 25000;
        snprintf(e->gflops_source, sizeof e->gflops_source,
                 "assumed for --device cuda: about 40%% of an H100's FP32 peak");
    } else {
        e->gflops = 100;
        snprintf(e->gflops_source, sizeof e->gflops_source,
                 "assumed for --device cpu: a 16-core AVX2 server with OpenBLAS");
    }
    e->seconds = e->total_flops / (e->gflops * 1e9);
    return 0;
}

/* --- output ------------------------------------------------------------------------ */

/* v in the largest of units[0..n) (steps of 1000) that keeps it at least 1. */
static const char *human(double v, const char *const *unit, int n, char *buf, size_t len)
{
    int u = 0;
    while (v >= 1000 && u < n - 1) {
        v /= 1000;
        u++;
    }
    snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

static const char *human_bytes(double v, char *buf, size_t n)
{
    static const char *const unit[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    return human(v, unit, 6, buf, n);
}

static const char *human_flops(double v, char *buf, size_t n)
{
    static const char *const unit[] = {"FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP"};
    return human(v, unit, 7, buf, n);
}

static const char *human_time(double s, char *buf, size_t n)
{
    if (s < 120)
        snprintf(buf, n, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, n, "%.0f min", s / 60);
    else if (s < 3 * 86400)
        snprintf(buf, n, "%.1f h", s / 3600);
    else
        snprintf(buf, n, "%.1f days", s / 86400);
    return buf;
}

void ct_estimate_print(const ct_estimate *e, FILE *f, const char *in)
{
    char a[32], b[32], c[32], d[32], g[32];
    if (e->params >= 1e9)
        snprintf(a, sizeof a, "%.2fB", e->params / 1e9);
    else
        snprintf(a, sizeof a, "%.2fM", e->params / 1e6);
    fprintf(f, "%smodel: %d blocks, d %d, vocab %d, %s parameters (%s); activations after block %d\n", in,
            e->n_layer, e->d, e->vocab, a, e->shape_source, e->layer);
    fprintf(f, "%ssequences of %lld tokens: %lld train (%lld shards), %lld val (%lld), %lld test\n", in,
            e->seq_len, e->train_sequences, e->train_shards, e->val_sequences, e->val_shards, e->test_sequences);
    fprintf(f, "%sdisk:\n", in);
    fprintf(f, "%s  token shards     %12s\n", in, human_bytes(e->tokens_bytes, a, sizeof a));
    fprintf(f, "%s  activations      %12s  %s per checkpoint (train %s, val %s; %s per full shard) x %lld\n",
            in, human_bytes(e->act_bytes, a, sizeof a), human_bytes(e->act_checkpoint_bytes, b, sizeof b),
            human_bytes(e->act_train_bytes, c, sizeof c), human_bytes(e->act_val_bytes, d, sizeof d),
            human_bytes(e->act_shard_bytes, g, sizeof g), e->checkpoints);
    fprintf(f, "%s  crosscoders      %12s  %lld (tuples x seeds), fp32\n", in,
            human_bytes(e->crosscoder_bytes, a, sizeof a), e->crosscoders);
    fprintf(f, "%s  training state   %12s  weights + Adam moments, 2 slots per crosscoder\n", in,
            human_bytes(e->train_state_bytes, a, sizeof a));
    fprintf(f, "%s  total            %12s\n", in, human_bytes(e->total_bytes, a, sizeof a));
    fprintf(f, "%scompute:\n", in);
    fprintf(f, "%s  extract          %12s  %s per checkpoint: blocks 0..%d on %lld train+val rows\n", in,
            human_flops(e->extract_flops, a, sizeof a), human_flops(e->extract_checkpoint_flops, b, sizeof b),
            e->layer, e->train_rows + e->val_rows);
    fprintf(f, "%s  train            %12s  %lld x %lld steps, 12*B*M*d*H per step\n", in,
            human_flops(e->train_flops, a, sizeof a), e->crosscoders, e->steps_per_crosscoder);
    fprintf(f, "%s  accuracy         %12s  %lld tasks x %lld examples per checkpoint\n", in,
            human_flops(e->accuracy_flops, a, sizeof a), e->tasks, e->examples_per_task);
    fprintf(f, "%s  attribute        %12s  per crosscoder, task and example (prefixes of %d tokens assumed)\n", in,
            human_flops(e->attribute_flops, a, sizeof a), EST_PREFIX_TOKENS);
    fprintf(f, "%s  total            %12s\n", in, human_flops(e->total_flops, a, sizeof a));
    fprintf(f, "%stime: about %s at %.0f GFLOP/s (%s)\n", in, human_time(e->seconds, a, sizeof a), e->gflops,
            e->gflops_source);
}

json_t *ct_estimate_to_json(const ct_estimate *e)
{
    json_t *j = json_object();
    json_object_set_new(j, "shape_source", json_string(e->shape_source));
    json_object_set_new(j, "model", json_pack("{s:i, s:i, s:i, s:i, s:i, s:f}", "n_layer", e->n_layer, "d",
                                              e->d, "vocab", e->vocab, "intermediate", e->intermediate,
                                              "layer", e->layer, "params", e->params));
    json_object_set_new(j, "counts",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "checkpoints",
                                  (json_int_t)e->checkpoints, "crosscoders", (json_int_t)e->crosscoders,
                                  "seq_len", (json_int_t)e->seq_len, "train_sequences",
                                  (json_int_t)e->train_sequences, "val_sequences", (json_int_t)e->val_sequences,
                                  "test_sequences", (json_int_t)e->test_sequences, "train_shards",
                                  (json_int_t)e->train_shards, "val_shards", (json_int_t)e->val_shards,
                                  "train_rows", (json_int_t)e->train_rows, "val_rows", (json_int_t)e->val_rows,
                                  "steps_per_crosscoder", (json_int_t)e->steps_per_crosscoder, "tasks",
                                  (json_int_t)e->tasks, "examples_per_task", (json_int_t)e->examples_per_task));
    json_object_set_new(j, "bytes",
                        json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "tokens", e->tokens_bytes,
                                  "activation_shard", e->act_shard_bytes, "activations_per_checkpoint",
                                  e->act_checkpoint_bytes, "activations_train_per_checkpoint", e->act_train_bytes,
                                  "activations_val_per_checkpoint", e->act_val_bytes, "activations", e->act_bytes,
                                  "crosscoders", e->crosscoder_bytes, "train_state", e->train_state_bytes, "total",
                                  e->total_bytes));
    json_object_set_new(j, "flops",
                        json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "extract_per_checkpoint",
                                  e->extract_checkpoint_flops, "extract", e->extract_flops, "train_step_m2",
                                  e->train_step_flops, "train", e->train_flops, "accuracy", e->accuracy_flops,
                                  "attribute", e->attribute_flops, "total", e->total_flops));
    json_object_set_new(j, "time", json_pack("{s:f, s:s, s:f}", "gflops", e->gflops, "assumption",
                                             e->gflops_source, "seconds", e->seconds));
    return j;
}
