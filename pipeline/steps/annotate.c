/* annotate: top-activating contexts of a crosscoder's selected latents on held-out
 * text ("annotate/<A>-<B>/seed<S>", METHOD §7).
 *
 * Inputs: crosscoder (the train step), validate (when planned), act_<m> (the val activation shards of the
 * tuple's m-th checkpoint: the held-out split that is extracted; the test split stays
 * as tokens) and tokenizer (the one tokenize/index used).
 *
 * Selection ("selection" in the key): "validate" when the recipe has tasks, so that
 * validate steps ("validate/<A-B>/seed<S>/<task>") are planned: the union over tasks of
 * the latents they selected (per checkpoint the relie.top_k by |IE|, METHOD §5), read
 * from their summaries. Otherwise "decoder_norm": per checkpoint m the relie.top_k
 * latents with the largest ‖W_dec[j,m]‖ of the unfolded crosscoder (ties: lower j),
 * then their union, so a recipe without tasks still gets annotated latents.
 *
 * Sequences: `sequences` (annotate.sequences, METHOD §7: 500) of the held-out
 * sequences in a seeded shuffle (annotate.seed, 42); all of them when there are fewer.
 *
 * Activation per checkpoint: what the latent gets from that checkpoint's residual alone
 * on the folded crosscoder, relu(x_m·W_enc[m,:,j] + b_enc[j]); "joint" is the shared
 * activation relu(Σ_m x_m·W_enc[m,:,j] + b_enc[j]) at the same token (the L1 model's
 * f_j). Per latent and checkpoint the `top` largest positive activations are kept
 * (ties: lower sequence, then position), each with `window` tokens around the firing
 * one, decoded token by token.
 *
 * Languages: a recipe whose corpus.mix has 2 or more languages is multilingual. Its
 * held-out sequences are drawn per language instead (METHOD §7: 100 in each of the
 * study's languages): in the same seeded shuffle, the first
 * annotate.sequences_per_language of each language of `languages` (those of the mix;
 * all of the mix's when `languages` is empty). A sequence's language comes from the
 * language table of tokenize/index (langtab.h) through the val token shards'
 * seq_index ("index" and "val_tokens" inputs, planned only then, so that other recipes
 * keep their key). Each context then carries its "lang", and each latent gets
 * "languages": the languages of its top contexts over all checkpoints, most contexts
 * first (ties: the order of `languages`), and "fire_rate": per language and
 * checkpoint, the fraction of that language's annotated tokens on which the latent's
 * activation from that checkpoint is positive. Both are reported because the top
 * contexts show where a latent fires most strongly, the rates how broadly. Otherwise
 * "languages" is null.
 *
 * Artifact (JSON): {"crosscoder", "checkpoints": [names], "selection": "decoder_norm",
 *   "sequences": n, "top", "window", "languages": null or [codes],
 *   ["sequences_per_language": {code: n},]
 *   "latents": [{"latent": j, "dec_norm": [M], ["languages": [codes], "fire_rate":
 *      {code: [M]},] "contexts": [per checkpoint:
 *      [{"seq": global held-out index, "pos": position in the sequence, "act", "joint",
 *        "ids": [token ids], "pieces": [decoded tokens], "fire": index in pieces
 *        [, "lang": code]}]]}]} */
#include "common/error.h"
#include "crosscoder/crosscoder.h"
#include "kernels/kernels.h"
#include "models/tokenizer/tokenizer.h"
#include "pipeline/plan.h"
#include "pipeline/plan_internal.h"
#include "pipeline/step.h"
#include "pipeline/steps/langtab.h"
#include "pipeline/steps/shard.h"
#include "pipeline/steps/sources.h"
#include "pipeline/steps/tuple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_M 8

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The languages a multilingual recipe annotates: those of `languages` that corpus.mix
 * has (in that order), else every language of the mix (sorted); NULL unless the mix
 * has 2 or more languages. */
static json_t *annotated_languages(const ct_recipe *recipe)
{
    json_t *mix = ct_recipe_get(recipe, "corpus.mix"), *want = ct_recipe_get(recipe, "languages"), *v;
    if (json_object_size(mix) < 2)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_array_foreach(want, i, v)
        if (json_object_get(mix, json_string_value(v)))
            json_array_append(out, v);
    if (json_array_size(out) == 0) {
        const char *code, **codes = malloc(json_object_size(mix) * sizeof *codes);
        size_t n = 0;
        if (!codes) {
            json_decref(out);
            return NULL;
        }
        json_object_foreach(mix, code, v) codes[n++] = code;
        qsort(codes, n, sizeof *codes, cmp_str);
        for (i = 0; i < n; i++)
            json_array_append_new(out, json_string(codes[i]));
        free(codes);
    }
    return out;
}

static int plan_annotate(ct_plan *plan, const ct_recipe *recipe)
{
    size_t idx, ncc = 0;
    ct_steps_budget b;
    ct_steps_crosscoder *cc = NULL;
    if (ct_plan_find(plan, "tokenize/index", &idx) != 0 || ct_steps_budget_of(recipe, &b) != 0)
        return 0;
    const char *tok = json_string_value(json_object_get(ct_plan_step_inputs(plan, idx), "tokenizer"));
    size_t n_val = ct_steps_n_shards(b.n_val, b.per_shard);
    int rc = tok && n_val ? ct_steps_crosscoders(plan, recipe, &cc, &ncc) : 0;
    for (size_t c = 0; c < ncc && !rc; c++) {
        char lab[1024];
        size_t k;
        json_t *nm, *task;
        int ok = 1;
        json_t *inputs = json_pack("{s:s, s:s}", "tokenizer", tok, "crosscoder", cc[c].train_label);
        json_array_foreach(cc[c].tuple, k, nm) {
            json_t *acts = json_array();
            for (size_t s = 0; s < n_val; s++) {
                snprintf(lab, sizeof lab, "extract/%s/val/%04zu", json_string_value(nm), s);
                ok &= ct_plan_find(plan, lab, &idx) == 0;
                json_array_append_new(acts, json_string(lab));
            }
            snprintf(lab, sizeof lab, "act_%zu", k);
            json_object_set_new(inputs, lab, acts);
        }
        json_t *validate = json_array();
        json_array_foreach(ct_recipe_get(recipe, "tasks"), k, task) {
            snprintf(lab, sizeof lab, "validate/%s/%s", cc[c].suffix, json_string_value(task));
            if (ct_plan_find(plan, lab, &idx) == 0)
                json_array_append_new(validate, json_string(lab));
        }
        const char *selection = json_array_size(validate) ? "validate" : "decoder_norm";
        if (json_array_size(validate))
            json_object_set(inputs, "validate", validate);
        json_decref(validate);
        if (!ok) {
            json_decref(inputs);
            continue;
        }
        snprintf(lab, sizeof lab, "annotate/%s", cc[c].suffix);
        json_t *params = json_pack("{s:O, s:O, s:O, s:O, s:O, s:s}", "sequences",
                                   ct_recipe_get(recipe, "annotate.sequences"), "seed",
                                   ct_recipe_get(recipe, "annotate.seed"), "top",
                                   ct_recipe_get(recipe, "annotate.top_contexts"), "window",
                                   ct_recipe_get(recipe, "annotate.context_tokens"), "per_checkpoint",
                                   ct_recipe_get(recipe, "relie.top_k"), "selection", selection);
        json_t *langs = annotated_languages(recipe);
        if (langs) { /* per language instead of `sequences`; the val shards say which is which */
            json_object_del(params, "sequences");
            json_object_set_new(params, "languages", langs);
            json_t *per = ct_recipe_get(recipe, "annotate.sequences_per_language");
            json_object_set_new(params, "per_language", json_integer(per ? json_integer_value(per) : 100));
            json_t *val = json_array();
            for (size_t v = 0; v < n_val; v++) {
                snprintf(lab, sizeof lab, "tokenize/val/%04zu", v);
                json_array_append_new(val, json_string(lab));
            }
            json_object_set_new(inputs, "val_tokens", val);
            json_object_set_new(inputs, "index", json_string("tokenize/index"));
            snprintf(lab, sizeof lab, "annotate/%s", cc[c].suffix);
        }
        rc = ct_plan_add(plan, "annotate", lab, params, inputs);
    }
    free(cc);
    return rc;
}

/* One kept context. */
typedef struct {
    float act, joint;
    uint64_t seq;
    uint32_t pos;
    int32_t *ids; /* [window] */
    int n_ids, fire;
    int lang;     /* index into the annotated languages; -1 without */
} context;

/* Is a better than b: larger activation, then earlier sequence and position. */
static int better(float act, uint64_t seq, uint32_t pos, const context *b)
{
    if (act != b->act)
        return act > b->act;
    if (seq != b->seq)
        return seq < b->seq;
    return pos < b->pos;
}

typedef struct {
    int M, d, S, top, window;
    int *sel;        /* [S] selected latents, ascending */
    float *dec_norm; /* [S*M] */
    float *wsel;     /* [M][S][d] encoder columns of the selected latents (folded) */
    float *bsel;     /* [S] */
    context *kept;   /* [S][M][top] */
    int *n_kept;     /* [S*M] */
    int32_t *idbuf;  /* [S*M*top*window] */
    /* multilingual recipes: L annotated languages */
    int L;
    int *seq_lang;     /* [held-out sequences] index into the languages, -1: not annotated */
    uint64_t *fires;   /* [S][M][L] tokens with a positive activation */
} annot;

static void keep(annot *a, int s, int m, float act, float joint, uint64_t seq, uint32_t pos, const int32_t *tokens,
                 uint32_t R, int lang)
{
    context *c = a->kept + ((size_t)s * a->M + m) * a->top;
    int *n = &a->n_kept[s * a->M + m];
    if (*n == a->top && !better(act, seq, pos, &c[*n - 1]))
        return;
    int at = *n < a->top ? (*n)++ : a->top - 1;
    int32_t *ids = c[at].ids; /* the slot's id buffer moves with the slot */
    while (at > 0 && better(act, seq, pos, &c[at - 1])) {
        c[at] = c[at - 1];
        at--;
    }
    c[at] = (context){act, joint, seq, pos, ids, 0, 0, lang};
    /* rows start at position 1: tokens[r] is the token at position r + 1 */
    int before = a->window - a->window / 4 - 1;
    long r = (long)pos - 1, lo = r - before < 0 ? 0 : r - before;
    long hi = r + a->window / 4 + 1 > (long)R ? (long)R : r + a->window / 4 + 1;
    for (long q = lo; q < hi; q++)
        ids[c[at].n_ids++] = tokens[q];
    c[at].fire = (int)(r - lo);
}

/* The latents the validate steps selected (their summaries' "latents"), marked in
 * chosen[H]; 0 when there are no validate inputs. */
static int validated(ct_step_ctx *ctx, int H, unsigned char *chosen, int *any)
{
    *any = 0;
    for (size_t i = 0; i < ct_step_input_count(ctx, "validate"); i++) {
        json_t *rec, *l;
        int rc = ct_step_input_record(ctx, "validate", i, &rec);
        if (rc)
            return rc;
        size_t k;
        json_array_foreach(json_object_get(json_object_get(rec, "summary"), "latents"), k, l) {
            json_int_t j = json_integer_value(json_object_get(l, "latent"));
            if (j < 0 || j >= H)
                return ct_error_set(CT_ECORRUPT, "%s: validate input %zu selects latent %lld of %d",
                                    ct_step_label(ctx), i, (long long)j, H);
            chosen[j] = 1;
        }
        *any = 1;
    }
    return 0;
}

/* The validate steps' latents when planned, else per checkpoint the per_checkpoint
 * latents with the largest decoder norm; union. */
static int select_latents(ct_step_ctx *ctx, annot *a, const ct_crosscoder *cc, int per)
{
    int H = cc->cfg.H, M = a->M, d = a->d;
    float *norm = malloc((size_t)H * M * sizeof *norm);
    unsigned char *chosen = calloc((size_t)H, 1), *round = calloc((size_t)H, 1);
    if (!norm || !chosen || !round) {
        free(norm);
        free(chosen);
        free(round);
        return ct_error_set(CT_ENOMEM, "annotate: out of memory");
    }
    for (int j = 0; j < H; j++)
        for (int m = 0; m < M; m++) {
            const float *w = cc->p.W_dec + ((size_t)j * M + m) * d;
            double s = 0;
            for (int e = 0; e < d; e++)
                s += (double)w[e] * w[e];
            norm[(size_t)j * M + m] = (float)sqrt(s);
        }
    int any = 0, rc = validated(ctx, H, chosen, &any);
    if (rc) {
        free(norm);
        free(chosen);
        free(round);
        return rc;
    }
    if (per > H)
        per = H;
    for (int m = 0; m < M && !any; m++) {
        memset(round, 0, (size_t)H);
        for (int k = 0; k < per; k++) {
            int best = -1;
            for (int j = 0; j < H; j++)
                if (!round[j] && (best < 0 || norm[(size_t)j * M + m] > norm[(size_t)best * M + m]))
                    best = j;
            round[best] = 1;
            chosen[best] = 1;
        }
    }
    free(round);
    a->S = 0;
    for (int j = 0; j < H; j++)
        a->S += chosen[j];
    a->sel = malloc((size_t)(a->S ? a->S : 1) * sizeof *a->sel);
    a->dec_norm = malloc((size_t)(a->S ? a->S : 1) * M * sizeof *a->dec_norm);
    if (!a->sel || !a->dec_norm) {
        free(norm);
        free(chosen);
        return ct_error_set(CT_ENOMEM, "annotate: out of memory");
    }
    int s = 0;
    for (int j = 0; j < H; j++)
        if (chosen[j]) {
            for (int m = 0; m < M; m++)
                a->dec_norm[(size_t)s * M + m] = norm[(size_t)j * M + m];
            a->sel[s++] = j;
        }
    free(norm);
    free(chosen);
    return 0;
}

static void annot_free(annot *a)
{
    free(a->sel);
    free(a->dec_norm);
    free(a->wsel);
    free(a->bsel);
    free(a->kept);
    free(a->n_kept);
    free(a->idbuf);
    free(a->seq_lang);
    free(a->fires);
}

/* The folded crosscoder and the selected latents' encoder columns. */
static int load_crosscoder(ct_step_ctx *ctx, annot *a, int per)
{
    char *buf;
    size_t len, mlen, xlen;
    const void *model;
    const char *metrics;
    ct_crosscoder *cc = NULL;
    int rc = ct_steps_read_input(ctx, "crosscoder", 0, &buf, &len);
    if (rc)
        return rc;
    if (!(rc = ct_steps_train_parse(buf, len, ct_step_label(ctx), &model, &mlen, &metrics, &xlen)))
        rc = ct_cc_load(model, mlen, ct_step_label(ctx), &cc);
    free(buf);
    if (!rc && cc->cfg.M != a->M)
        rc = ct_error_set(CT_EINVAL, "%s: the crosscoder has %d checkpoints, the step %d activation inputs",
                          ct_step_label(ctx), cc->cfg.M, a->M);
    if (!rc) {
        a->d = cc->cfg.d;
        rc = select_latents(ctx, a, cc, per);
    }
    if (!rc && !cc->folded)
        rc = ct_cc_fold(cc);
    if (!rc) {
        int M = a->M, d = a->d, S = a->S, H = cc->cfg.H;
        a->wsel = malloc(((size_t)M * S * d + 1) * sizeof *a->wsel);
        a->bsel = malloc(((size_t)S + 1) * sizeof *a->bsel);
        if (!a->wsel || !a->bsel)
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", ct_step_label(ctx));
        for (int m = 0; !rc && m < M; m++)
            for (int s = 0; s < S; s++)
                for (int e = 0; e < d; e++)
                    a->wsel[((size_t)m * S + s) * d + e] = cc->p.W_enc[((size_t)m * d + e) * H + a->sel[s]];
        for (int s = 0; !rc && s < S; s++)
            a->bsel[s] = cc->p.b_enc[a->sel[s]];
    }
    ct_cc_free(cc);
    return rc;
}

typedef struct {
    ct_blob_reader *r;
    ct_actshard_info h;
} shard;

/* Opens every activation shard; shard k must hold the same sequences for every
 * checkpoint. starts[k] = index of shard k's first sequence. */
static int open_shards(ct_step_ctx *ctx, const annot *a, size_t K, shard *sh, uint64_t *starts)
{
    uint64_t total = 0;
    for (size_t k = 0; k < K; k++) {
        for (int m = 0; m < a->M; m++) {
            char name[32], what[64];
            snprintf(name, sizeof name, "act_%d", m);
            snprintf(what, sizeof what, "%s[%zu]", name, k);
            shard *s = &sh[(size_t)m * K + k];
            int rc = ct_step_input(ctx, name, k, &s->r);
            if (!rc)
                rc = ct_actshard_header(s->r, what, &s->h);
            if (rc)
                return rc;
            const ct_actshard_info *h0 = &sh[k].h;
            if (s->h.d != (uint32_t)a->d || s->h.n_seq != h0->n_seq || s->h.seq_len != h0->seq_len ||
                strcmp(s->h.token_key, h0->token_key) != 0)
                return ct_error_set(CT_EINVAL, "%s: %s does not hold the sequences of act_0[%zu] at width %d",
                                    ct_step_label(ctx), what, k, a->d);
        }
        if (sh[k].h.seq_len != sh[0].h.seq_len)
            return ct_error_set(CT_EINVAL, "%s: shards of different sequence lengths", ct_step_label(ctx));
        starts[k] = total;
        total += sh[k].h.n_seq;
    }
    starts[K] = total;
    return 0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Runs the chosen sequences through the selected latents and keeps the top contexts. */
static int scan(ct_step_ctx *ctx, annot *a, const shard *sh, size_t K, const uint64_t *starts, const uint64_t *seqs,
                size_t n_use)
{
    int M = a->M, d = a->d, S = a->S;
    uint32_t R = sh[0].h.seq_len - 1;
    uint16_t *raw = malloc((size_t)R * d * sizeof *raw);
    float *x = malloc((size_t)R * d * sizeof *x), *pre = malloc(((size_t)M * R * S + 1) * sizeof *pre);
    int32_t *tokens = malloc((size_t)R * sizeof *tokens);
    ct_kern *kern = NULL;
    int rc = raw && x && pre && tokens ? ct_kern_create(CT_DEVICE_CPU, &kern)
                                       : ct_error_set(CT_ENOMEM, "%s: out of memory", ct_step_label(ctx));
    ct_progress *prog = rc ? NULL : ct_step_progress(ctx, (double)n_use, "sequences");
    size_t k = 0;
    for (size_t i = 0; !rc && i < n_use; i++) {
        uint64_t g = seqs[i];
        int lang = a->seq_lang ? a->seq_lang[g] : -1;
        while (g >= starts[k + 1])
            k++;
        uint64_t row0 = (g - starts[k]) * R;
        rc = ct_blob_read_at(sh[k].r, CT_ACTSHARD_HEADER + row0 * 4, tokens, (size_t)R * 4);
        for (int m = 0; !rc && m < M; m++) {
            const shard *s = &sh[(size_t)m * K + k];
            if ((rc = ct_blob_read_at(s->r, s->h.data_offset + row0 * d * 2, raw, (size_t)R * d * 2)))
                break;
            for (size_t e = 0; e < (size_t)R * d; e++)
                x[e] = s->h.dtype == CT_ACT_BF16 ? ct_bf16_to_f32(raw[e]) : ct_f16_to_f32(raw[e]);
            if (S)
                rc = ct_kern_matmul_fwd(kern, pre + (size_t)m * R * S, x, a->wsel + (size_t)m * S * d, NULL,
                                        (int)R, d, S, 0);
        }
        for (uint32_t r = 0; !rc && r < R; r++)
            for (int s = 0; s < S; s++) {
                float joint = a->bsel[s];
                for (int m = 0; m < M; m++)
                    joint += pre[((size_t)m * R + r) * S + s];
                for (int m = 0; m < M; m++) {
                    float act = pre[((size_t)m * R + r) * S + s] + a->bsel[s];
                    if (act > 0) {
                        keep(a, s, m, act, joint > 0 ? joint : 0, g, r + 1, tokens, R, lang);
                        if (lang >= 0)
                            a->fires[((size_t)s * M + m) * a->L + lang]++;
                    }
                }
            }
        if (!rc && ct_step_interrupted(ctx))
            rc = ct_error_set(CT_EINTR, "%s: interrupted", ct_step_label(ctx));
        ct_progress_update(prog, (double)(i + 1));
    }
    ct_kern_free(kern);
    free(raw);
    free(x);
    free(pre);
    free(tokens);
    return rc;
}

/* Multilingual recipes: the language of every held-out sequence (an index into
 * `langs`, -1 for a language not annotated), from the language table of the index
 * through the val token shards, which must be those the activation shards hold. */
static int sequence_languages(ct_step_ctx *ctx, annot *a, json_t *langs, const shard *sh, size_t K,
                              const uint64_t *starts)
{
    const char *label = ct_step_label(ctx);
    if (ct_step_input_count(ctx, "val_tokens") != K)
        return ct_error_set(CT_EINVAL, "%s: %zu val token shards for %zu activation shards", label,
                            ct_step_input_count(ctx, "val_tokens"), K);
    ct_blob_reader *r;
    ct_langtab t;
    char name[300];
    snprintf(name, sizeof name, "%s: input index", label);
    int rc = ct_step_input(ctx, "index", 0, &r);
    if (rc)
        return rc;
    rc = ct_langtab_read(r, name, &t);
    ct_blob_reader_close(r);
    if (rc)
        return rc;
    int map[256];
    for (size_t i = 0; i < t.n_lang; i++) {
        map[i] = -1;
        for (size_t j = 0; j < json_array_size(langs); j++)
            if (strcmp(t.names[i], json_string_value(json_array_get(langs, j))) == 0)
                map[i] = (int)j;
    }
    a->L = (int)json_array_size(langs);
    a->seq_lang = malloc((starts[K] + 1) * sizeof *a->seq_lang);
    if (!a->seq_lang)
        rc = ct_error_set(CT_ENOMEM, "%s: out of memory", label);
    for (size_t k = 0; k < K && !rc; k++) {
        char hex[65];
        ct_tokshard ts;
        if ((rc = ct_steps_input_key_hex(ctx, "val_tokens", k, hex)))
            break;
        if (strcmp(hex, sh[k].h.token_key) != 0) {
            rc = ct_error_set(CT_EINVAL, "%s: act_0[%zu] was not extracted from val_tokens[%zu]", label, k, k);
            break;
        }
        if ((rc = ct_tokshard_read(ctx, "val_tokens", k, &ts)))
            break;
        if (ts.n_seq != sh[k].h.n_seq)
            rc = ct_error_set(CT_EINVAL, "%s: val_tokens[%zu] holds %llu sequences, act_0[%zu] %llu", label, k,
                              (unsigned long long)ts.n_seq, k, (unsigned long long)sh[k].h.n_seq);
        for (uint64_t q = 0; q < ts.n_seq && !rc; q++) {
            if (ts.seq_index[q] >= t.n_seq)
                rc = ct_error_set(CT_ECORRUPT, "%s: val_tokens[%zu] sequence %llu is past the index's %llu", label,
                                  k, (unsigned long long)ts.seq_index[q], (unsigned long long)t.n_seq);
            else
                a->seq_lang[starts[k] + q] = map[t.lang[ts.seq_index[q]]];
        }
        ct_tokshard_free(&ts);
    }
    ct_langtab_free(&t);
    return rc;
}

/* The sequences to scan, in shard order: `want` of the N in a seeded shuffle, or with
 * languages the first `per_language` of each annotated language in that shuffle
 * (count[L] of them). */
static size_t choose_sequences(const annot *a, uint64_t N, long long want, long long per_language, uint64_t seed,
                               uint64_t *seqs, uint64_t *count)
{
    size_t n = 0;
    if (!a->seq_lang) {
        n = (uint64_t)want < N ? (size_t)want : (size_t)N;
        for (size_t i = 0; i < n; i++)
            seqs[i] = ct_steps_permute(i, N, seed);
    } else {
        for (uint64_t i = 0; i < N; i++) {
            uint64_t g = ct_steps_permute(i, N, seed);
            int l = a->seq_lang[g];
            if (l >= 0 && count[l] < (uint64_t)per_language) {
                count[l]++;
                seqs[n++] = g;
            }
        }
    }
    qsort(seqs, n, sizeof *seqs, cmp_u64); /* shard order; the kept set does not depend on it */
    return n;
}

/* Multilingual recipes: a latent's languages (of its top contexts, most first) and
 * firing rates per language and checkpoint. */
static void latent_languages(const annot *a, int s, json_t *langs, const uint64_t *count, uint32_t R,
                             json_t *out)
{
    int L = a->L, M = a->M;
    int *n = calloc((size_t)L + 1, sizeof *n);
    json_t *rates = json_object(), *order = json_array();
    if (!n || !rates || !order) {
        free(n);
        json_decref(rates);
        json_decref(order);
        return;
    }
    for (int m = 0; m < M; m++)
        for (int q = 0; q < a->n_kept[s * M + m]; q++) {
            int l = a->kept[((size_t)s * M + m) * a->top + q].lang;
            if (l >= 0)
                n[l]++;
        }
    for (;;) { /* most contexts first; ties: the order of the languages */
        int best = -1;
        for (int l = 0; l < L; l++)
            if (n[l] > 0 && (best < 0 || n[l] > n[best]))
                best = l;
        if (best < 0)
            break;
        json_array_append(order, json_array_get(langs, (size_t)best));
        n[best] = 0;
    }
    for (int l = 0; l < L; l++) {
        json_t *r = json_array();
        double tokens = (double)count[l] * R;
        for (int m = 0; m < M; m++)
            json_array_append_new(r, json_real(tokens > 0 ? (double)a->fires[((size_t)s * M + m) * L + l] / tokens
                                                          : 0.0));
        json_object_set_new(rates, json_string_value(json_array_get(langs, (size_t)l)), r);
    }
    json_object_set_new(out, "languages", order);
    json_object_set_new(out, "fire_rate", rates);
    free(n);
}

static json_t *context_json(const ct_tokenizer *tok, const context *c, json_t *langs)
{
    json_t *ids = json_array(), *pieces = json_array();
    for (int q = 0; q < c->n_ids; q++) {
        char *text = NULL;
        size_t len = 0;
        json_array_append_new(ids, json_integer(c->ids[q]));
        if (ct_tok_decode(tok, &c->ids[q], 1, 0, &text, &len) == 0)
            json_array_append_new(pieces, json_stringn(text, len));
        else
            json_array_append_new(pieces, json_string("\xef\xbf\xbd"));
        free(text);
    }
    ct_error_clear();
    json_t *out = json_pack("{s:I, s:I, s:f, s:f, s:o, s:o, s:i}", "seq", (json_int_t)c->seq, "pos",
                            (json_int_t)c->pos, "act", (double)c->act, "joint", (double)c->joint, "ids", ids,
                            "pieces", pieces, "fire", c->fire);
    if (out && c->lang >= 0)
        json_object_set(out, "lang", json_array_get(langs, (size_t)c->lang));
    return out;
}

static int run_annotate(ct_step_ctx *ctx)
{
    json_t *p = ct_step_params(ctx);
    annot a = {0};
    while (a.M < MAX_M) {
        char name[32];
        snprintf(name, sizeof name, "act_%d", a.M);
        if (!ct_step_input_count(ctx, name))
            break;
        a.M++;
    }
    a.top = (int)json_integer_value(json_object_get(p, "top"));
    a.window = (int)json_integer_value(json_object_get(p, "window"));
    long long want = json_integer_value(json_object_get(p, "sequences"));
    long long per_language = json_integer_value(json_object_get(p, "per_language"));
    json_t *langs = json_object_get(p, "languages");
    uint64_t seed = (uint64_t)json_integer_value(json_object_get(p, "seed"));
    int per = (int)json_integer_value(json_object_get(p, "per_checkpoint"));
    if (a.M < 2 || a.top < 1 || a.window < 1 || want < 0 || per < 1 || per_language < 0 ||
        json_array_size(langs) > 255)
        return ct_error_set(CT_EINVAL, "%s: needs 2+ checkpoints, top >= 1, window >= 1, per_checkpoint >= 1",
                            ct_step_label(ctx));
    size_t K = ct_step_input_count(ctx, "act_0");
    shard *sh = calloc((size_t)a.M * K + 1, sizeof *sh);
    uint64_t *starts = calloc(K + 2, sizeof *starts), *seqs = NULL;
    ct_tokenizer *tok = NULL;
    int rc = sh && starts ? load_crosscoder(ctx, &a, per) : ct_error_set(CT_ENOMEM, "out of memory");
    if (!rc)
        rc = open_shards(ctx, &a, K, sh, starts);
    if (!rc)
        rc = ct_steps_load_tokenizer(ctx, "tokenizer", &tok);
    if (!rc && json_array_size(langs))
        rc = sequence_languages(ctx, &a, langs, sh, K, starts);
    uint64_t N = rc ? 0 : starts[K];
    uint64_t *count = calloc((size_t)a.L + 1, sizeof *count);
    size_t n_use = 0;
    size_t slots = (size_t)a.S * a.M * a.top;
    if (!rc) {
        seqs = malloc((N + 1) * sizeof *seqs);
        a.kept = calloc(slots + 1, sizeof *a.kept);
        a.n_kept = calloc((size_t)a.S * a.M + 1, sizeof *a.n_kept);
        a.idbuf = malloc((slots * a.window + 1) * sizeof *a.idbuf);
        a.fires = calloc((size_t)a.S * a.M * a.L + 1, sizeof *a.fires);
        if (!seqs || !a.kept || !a.n_kept || !a.idbuf || !a.fires || !count)
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", ct_step_label(ctx));
    }
    if (!rc) {
        for (size_t i = 0; i < slots; i++)
            a.kept[i].ids = a.idbuf + i * a.window;
        n_use = choose_sequences(&a, N, want, per_language, seed, seqs, count);
        rc = scan(ctx, &a, sh, K, starts, seqs, n_use);
    }
    if (!rc) {
        json_t *lat = json_array();
        for (int s = 0; s < a.S; s++) {
            json_t *norms = json_array(), *per_ck = json_array();
            for (int m = 0; m < a.M; m++) {
                json_array_append_new(norms, json_real(a.dec_norm[(size_t)s * a.M + m]));
                json_t *list = json_array();
                for (int q = 0; q < a.n_kept[s * a.M + m]; q++)
                    json_array_append_new(list,
                                          context_json(tok, &a.kept[((size_t)s * a.M + m) * a.top + q], langs));
                json_array_append_new(per_ck, list);
            }
            json_t *one = json_pack("{s:i, s:o, s:o}", "latent", a.sel[s], "dec_norm", norms, "contexts", per_ck);
            if (one && a.seq_lang)
                latent_languages(&a, s, langs, count, sh[0].h.seq_len - 1, one);
            json_array_append_new(lat, one);
        }
        json_t *out = json_pack("{s:s, s:O, s:I, s:i, s:i, s:n, s:o}", "crosscoder",
                                ct_step_label(ctx) + strlen("annotate/"), "selection",
                                json_object_get(p, "selection"), "sequences",
                                (json_int_t)n_use, "top", a.top, "window", a.window, "languages", "latents", lat);
        json_t *per_lang = a.seq_lang ? json_object() : NULL;
        for (int l = 0; per_lang && l < a.L; l++)
            json_object_set_new(per_lang, json_string_value(json_array_get(langs, (size_t)l)),
                                json_integer((json_int_t)count[l]));
        if (out && per_lang) {
            json_object_set(out, "languages", langs);
            json_object_set(out, "sequences_per_language", per_lang);
        }
        char *text = out ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(7)) : NULL;
        json_decref(out);
        ct_blob_writer *w;
        if (!text)
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", ct_step_label(ctx));
        else if (!(rc = ct_step_output(ctx, &w)))
            rc = ct_blob_write(w, text, strlen(text));
        free(text);
        if (!rc) {
            json_t *summary = json_pack("{s:i, s:I, s:I, s:O}", "latents", a.S, "sequences", (json_int_t)n_use,
                                        "held_out_sequences", (json_int_t)N, "selection",
                                        json_object_get(p, "selection"));
            if (summary && per_lang)
                json_object_set(summary, "languages", per_lang);
            ct_step_set_summary(ctx, summary);
        }
        json_decref(per_lang);
    }
    free(count);
    for (size_t i = 0; sh && i < (size_t)a.M * K; i++)
        ct_blob_reader_close(sh[i].r);
    free(sh);
    free(starts);
    free(seqs);
    ct_tok_free(tok);
    annot_free(&a);
    return rc;
}

const ct_step_kind ct_step_annotate = {
    .name = "annotate",
    .version = 1,
    .summary = "top-activating held-out contexts of a crosscoder's selected latents, per checkpoint",
    .plan = plan_annotate,
    .run = run_annotate,
    .internal = 0,
    .bundle = CT_BUNDLE_RESULT,
};
