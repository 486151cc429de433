/* tokenize: one token shard of the train, val or test split, sliced from the
 * tokenize_index artifact ("tokenize/<split>/<shard>", e.g. tokenize/train/0003).
 *
 * The split is a seeded permutation (corpus.seed) of all n = train + val + test
 * sequences: permuted positions [0, train) are train, the next val are val, the rest
 * test. Within a split the sequences are kept in corpus order (the trainer shuffles
 * rows itself), which also makes slicing the index a forward scan. */
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const splits[3] = {"train", "val", "test"};

static int plan_tokenize(ct_plan *plan, const ct_recipe *recipe)
{
    size_t idx;
    if (ct_plan_find(plan, "tokenize/index", &idx) != 0)
        return 0;
    ct_steps_budget b;
    int rc = ct_steps_budget_of(recipe, &b);
    long long counts[3] = {b.n_train, b.n_val, b.n_test};
    for (int s = 0; s < 3 && !rc; s++) {
        size_t ns = ct_steps_n_shards(counts[s], b.per_shard);
        for (size_t k = 0; k < ns && !rc; k++) {
            char label[64];
            snprintf(label, sizeof label, "tokenize/%s/%04zu", splits[s], k);
            json_t *params = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "split", splits[s], "shard",
                                       (json_int_t)k, "train", (json_int_t)b.n_train, "val",
                                       (json_int_t)b.n_val, "test", (json_int_t)b.n_test, "per_shard",
                                       (json_int_t)b.per_shard, "seed", (json_int_t)b.seed);
            rc = ct_plan_add(plan, "tokenize", label, params, json_pack("{s:s}", "index", "tokenize/index"));
        }
    }
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int run_tokenize(ct_step_ctx *ctx)
{
    json_t *p = ct_step_params(ctx);
    const char *split = json_string_value(json_object_get(p, "split"));
    long long shard = json_integer_value(json_object_get(p, "shard"));
    long long n_train = json_integer_value(json_object_get(p, "train"));
    long long n_val = json_integer_value(json_object_get(p, "val"));
    long long n_test = json_integer_value(json_object_get(p, "test"));
    long long per = json_integer_value(json_object_get(p, "per_shard"));
    uint64_t seed = (uint64_t)json_integer_value(json_object_get(p, "seed"));
    uint64_t total = (uint64_t)(n_train + n_val + n_test);
    long long lo = 0, n_split = n_train;
    if (split && strcmp(split, "val") == 0) {
        lo = n_train;
        n_split = n_val;
    } else if (split && strcmp(split, "test") == 0) {
        lo = n_train + n_val;
        n_split = n_test;
    }
    const uint16_t one = 1;
    if (*(const uint8_t *)&one != 1) /* shards hold little-endian ids, read here in place */
        return ct_error_set(CT_EUNSUPPORTED, "%s: big-endian hosts are not supported", ct_step_label(ctx));
    long long first = shard * per, count = n_split - first < per ? n_split - first : per;
    if (count <= 0 || per <= 0)
        return ct_error_set(CT_EINVAL, "%s: shard %lld is past the end of the %s split", ct_step_label(ctx),
                            shard, split ? split : "?");

    ct_blob_reader *r;
    int rc = ct_step_input(ctx, "index", 0, &r);
    if (rc)
        return rc;
    uint32_t T;
    uint64_t n_index;
    char name[300];
    snprintf(name, sizeof name, "%s: input index", ct_step_label(ctx));
    uint64_t *members = malloc((size_t)n_split * 8 + 8);
    ct_tokshard s = {0};
    if (!members)
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    if (!rc && !(rc = ct_tokshard_header(r, name, &T, &n_index)) && n_index != total)
        rc = ct_error_set(CT_ECORRUPT, "%s holds %llu sequences, expected %llu", name,
                          (unsigned long long)n_index, (unsigned long long)total);
    if (!rc) {
        uint64_t key = ct_steps_mix(seed ^ 0x73706c6974ull); /* "split" */
        for (long long i = 0; i < n_split; i++)
            members[i] = ct_steps_permute((uint64_t)(lo + i), total, key);
        qsort(members, (size_t)n_split, 8, cmp_u64);
        s.seq_len = T;
        s.n_seq = (uint64_t)count;
        s.ids = malloc((size_t)count * T * 4);
        s.seq_index = malloc((size_t)count * 8);
        s.doc_index = malloc((size_t)count * 8);
        if (!s.ids || !s.seq_index || !s.doc_index)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
    }
    uint64_t idx_off = CT_TOKSHARD_HEADER + total * T * 4;
    for (long long i = 0; i < count && !rc; i++) {
        uint64_t q = members[first + i];
        uint8_t b[8];
        rc = ct_blob_read_at(r, CT_TOKSHARD_HEADER + q * T * 4, s.ids + (size_t)i * T, (size_t)T * 4);
        if (!rc)
            rc = ct_blob_read_at(r, idx_off + (total + q) * 8, b, 8);
        if (!rc) {
            uint64_t doc = 0;
            for (int k = 7; k >= 0; k--)
                doc = doc << 8 | b[k];
            s.seq_index[i] = q;
            s.doc_index[i] = doc;
        }
    }
    ct_blob_reader_close(r);
    ct_blob_writer *w;
    if (!rc && !(rc = ct_step_output(ctx, &w)))
        rc = ct_tokshard_write(w, &s);
    if (!rc)
        ct_step_set_summary(ctx, json_pack("{s:s, s:I, s:I}", "split", split, "sequences", (json_int_t)count,
                                           "seq_len", (json_int_t)T));
    ct_tokshard_free(&s);
    free(members);
    return rc;
}

const ct_step_kind ct_step_tokenize = {
    .name = "tokenize",
    .version = 1,
    .summary = "one token shard of the train/val/test split (seeded by corpus.seed)",
    .plan = plan_tokenize,
    .run = run_tokenize,
    .internal = 0,
    .bundle = CT_BUNDLE_NEVER,
};
