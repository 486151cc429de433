/* What a recipe will cost before anything runs: disk space of its artifacts and the
 * floating-point work of its steps, for `crosstime run --dry-run` and the line `run`
 * prints before it starts.
 *
 * A pure function of the recipe and the model's shape. The shape comes from the first
 * checkpoint's config.json when it is on disk (a local directory or the Hugging Face
 * hub cache), from the recipe's `pretrain.model` for `pretrain:` sources, and
 * otherwise from a table of the paper's models (pythia-1b, OLMo-1B, bloom-1b1; by
 * repository name, else by model.family). Nothing is read but that config.json; the
 * cache is not opened.
 *
 * The figures are estimates: byte counts follow the artifact layouts exactly
 * (pipeline/steps/shard.h), FLOP counts use the usual dense-transformer rules written
 * beside each formula in estimate.c, and the time divides FLOPs by a stated
 * throughput. */
#ifndef CT_ESTIMATE_H
#define CT_ESTIMATE_H

#include "pipeline/recipe/recipe.h"

#include <jansson.h>
#include <stdio.h>

typedef struct {
    const char *device; /* "cpu" or "cuda": picks the assumed throughput */
    double gflops;      /* sustained GFLOP/s; 0: the device's assumption */
} ct_estimate_options;

#define CT_ESTIMATE_OPTIONS_INIT {"cpu", 0.0}

typedef struct {
    /* the model shape used, and where it came from */
    char shape_source[96]; /* "config.json", "pretrain.model", "table: pythia-1b", ... */
    int n_layer, d, vocab, intermediate, layer;
    double params; /* all parameters, embeddings included */
    /* sizes of the run */
    long long checkpoints, crosscoders, seq_len, train_sequences, val_sequences, test_sequences;
    long long train_shards, val_shards, train_rows, val_rows, steps_per_crosscoder;
    long long tasks, examples_per_task;
    /* disk, bytes */
    double tokens_bytes;          /* the index and every split shard */
    double act_shard_bytes;       /* one full activation shard */
    double act_checkpoint_bytes;  /* train + val activation shards of one checkpoint */
    double act_train_bytes, act_val_bytes; /* of one checkpoint, by split */
    double act_bytes;             /* all checkpoints */
    double crosscoder_bytes;      /* trained crosscoders (fp32 weights), all tuples and seeds */
    double train_state_bytes;     /* resume states: weights + Adam moments, two slots each */
    double total_bytes;
    /* work, FLOPs */
    double extract_checkpoint_flops, extract_flops;
    double train_step_flops; /* of a 2-checkpoint crosscoder */
    double train_flops;
    double accuracy_flops, attribute_flops;
    double total_flops;
    /* time */
    double gflops;
    char gflops_source[128];
    double seconds;
} ct_estimate;

/* Fills *out for `recipe`. Errors: a config.json that is present but malformed, a
 * recipe without model or corpus (CT_EINVAL, naming the recipe). */
int ct_estimate_recipe(const ct_recipe *recipe, const ct_estimate_options *opts, ct_estimate *out);

/* The estimate as text lines (to `f`, each starting with `indent`), or as a JSON object
 * with the fields above (new reference). */
void ct_estimate_print(const ct_estimate *e, FILE *f, const char *indent);
json_t *ct_estimate_to_json(const ct_estimate *e);

#endif
