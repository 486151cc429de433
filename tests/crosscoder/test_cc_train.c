/* Crosscoder training end to end: recovery of planted features and their RelDec
 * classes, bit-identical determinism, resume after SIGKILL, the artifact and state
 * formats, folding, the row source, the normalisation estimate, and metric lines. */
#include "common/error.h"
#include "common/io.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/export.h"
#include "crosscoder/loss.h"
#include "crosscoder/rng.h"
#include "crosscoder/source.h"
#include "crosscoder/train.h"
#include "models/checkpoint/safetensors.h"
#include "tests/support/testutil.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

/* ---- planted features ------------------------------------------------------------ */

enum { PL_M = 2, PL_D = 16, PL_PER = 4, PL_F = 4 * PL_PER };
enum { CLS_A = 0, CLS_B = 1, CLS_SAME = 2, CLS_ROT = 3 };

typedef struct planted {
    float dirs[PL_F][PL_M * PL_D]; /* per feature: its direction in A then in B (unit or 0) */
    int cls[PL_F];
    float *rows;
    size_t n;
} planted;

static void unit_vec(ct_cc_rng *r, float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i += 2) {
        double a, b;
        ct_cc_rng_normal2(r, &a, &b);
        v[i] = (float)a;
        if (i + 1 < n)
            v[i + 1] = (float)b;
    }
    for (int i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    for (int i = 0; i < n; i++)
        v[i] = (float)(v[i] / sqrt(s));
}

/* Rows are sparse sums of known directions: A-only features write only checkpoint A,
 * B-only only B, "same" the same direction in both, "rotated" a different direction
 * in B. Each feature is on with probability 0.06, magnitude U(0.5, 1.5), plus small
 * isotropic noise. */
static void make_planted(planted *p, size_t n, uint64_t seed)
{
    ct_cc_rng r;
    ct_cc_rng_seed(&r, seed);
    memset(p->dirs, 0, sizeof p->dirs);
    for (int f = 0; f < PL_F; f++) {
        int c = f / PL_PER;
        p->cls[f] = c;
        if (c != CLS_B)
            unit_vec(&r, p->dirs[f], PL_D);
        if (c == CLS_B || c == CLS_ROT)
            unit_vec(&r, p->dirs[f] + PL_D, PL_D);
        if (c == CLS_SAME)
            memcpy(p->dirs[f] + PL_D, p->dirs[f], sizeof(float) * PL_D);
    }
    p->n = n;
    p->rows = calloc(n * PL_M * PL_D, sizeof(float));
    for (size_t b = 0; b < n; b++) {
        float *x = p->rows + b * PL_M * PL_D;
        for (int f = 0; f < PL_F; f++)
            if (ct_cc_rng_uniform(&r) < 0.06) {
                double a = 0.5 + ct_cc_rng_uniform(&r);
                for (int i = 0; i < PL_M * PL_D; i++)
                    x[i] += (float)(a * p->dirs[f][i]);
            }
        for (int i = 0; i < PL_M * PL_D; i += 2) {
            double a, c;
            ct_cc_rng_normal2(&r, &a, &c);
            x[i] += (float)(0.01 * a);
            x[i + 1] += (float)(0.01 * c);
        }
    }
}

static int collect_line(void *ctx, const char *json)
{
    json_t **arr = ctx;
    json_error_t err;
    json_t *o = json_loads(json, 0, &err);
    ck_assert_msg(o != NULL, "metric line is not JSON: %s", json);
    json_array_append_new(*arr, o);
    return 0;
}

START_TEST(planted_features_recovered_and_classified)
{
    planted p;
    make_planted(&p, 16384, 2024);
    /* Normalisation (METHOD §1) on an unshuffled view, then training rows scaled. */
    ct_cc_source raw;
    ck_assert_int_eq(ct_cc_memsource_open(p.rows, p.n, PL_M, PL_D, NULL, 0, 0, &raw), 0);
    float scale[PL_M];
    ck_assert_int_eq(ct_cc_estimate_scale(&raw, 4096, 512, scale), 0);
    ct_cc_source_close(&raw);
    ct_cc_source tr, va;
    ck_assert_int_eq(ct_cc_memsource_open(p.rows, 14336, PL_M, PL_D, scale, 7, 1, &tr), 0);
    ck_assert_int_eq(ct_cc_memsource_open(p.rows + 14336 * PL_M * PL_D, 2048, PL_M, PL_D, scale, 0, 0, &va), 0);
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.M = PL_M;
    c.d = PL_D;
    c.H = 32;
    c.batch = 256;
    c.steps = 1500;
    c.lr = 5e-3f;
    c.l1_coeff = 0.5f;
    c.log_every = 500;
    c.val_rows = 2048;
    c.checkpoint_every = 0;
    c.seed = 124;
    ct_cc_trainer *t;
    ck_assert_int_eq(ct_cc_trainer_create(&c, &tr, &va, scale, &t), 0);
    json_t *lines = json_array();
    ct_cc_callbacks cb = {.ctx = &lines, .on_metrics = collect_line};
    ct_cc_trainer_set_callbacks(t, &cb);
    ck_assert_int_eq(ct_cc_trainer_run(t), 0);
    ct_crosscoder *cc = ct_cc_trainer_model(t);
    int D = PL_M * PL_D;
    float *rd = malloc(sizeof(float) * c.H);
    ck_assert_int_eq(ct_cc_reldec(cc, 0, 1, rd), 0);
    int recovered = 0, classified = 0;
    for (int f = 0; f < PL_F; f++) {
        /* the planted direction as the scaled crosscoder sees it */
        double v[PL_M * PL_D], vn = 0;
        for (int i = 0; i < D; i++) {
            v[i] = p.dirs[f][i] * scale[i / PL_D];
            vn += v[i] * v[i];
        }
        double best = -1;
        int bj = -1;
        for (int j = 0; j < c.H; j++) {
            const float *w = cc->p.W_dec + (size_t)j * D;
            double dot = 0, wn = 0;
            for (int i = 0; i < D; i++) {
                dot += v[i] * w[i];
                wn += (double)w[i] * w[i];
            }
            double cs = wn > 0 ? dot / sqrt(vn * wn) : 0;
            if (cs > best) {
                best = cs;
                bj = j;
            }
        }
        if (best > 0.9) {
            recovered++;
            int cls = rd[bj] < 0.3 ? CLS_A : rd[bj] > 0.7 ? CLS_B : CLS_SAME;
            int want = p.cls[f] == CLS_ROT ? CLS_SAME : p.cls[f];
            classified += cls == want;
            if (cls != want)
                fprintf(stderr, "feature %d (class %d): latent %d RelDec %.3f\n", f, p.cls[f], bj, rd[bj]);
        } else {
            fprintf(stderr, "feature %d (class %d) not recovered: best cosine %.3f\n", f, p.cls[f], best);
        }
    }
    fprintf(stderr, "planted features: recovered %d/%d (%.0f%%), RelDec class correct for %d/%d recovered\n",
            recovered, PL_F, 100.0 * recovered / PL_F, classified, recovered);
    ck_assert_int_ge(recovered, PL_F - 1);
    ck_assert_int_eq(classified, recovered);
    /* Metric lines: train and val every 500 steps. */
    ck_assert_int_eq((int)json_array_size(lines), 6);
    json_t *last = json_array_get(lines, 5);
    ck_assert_str_eq(json_string_value(json_object_get(last, "split")), "val");
    ck_assert_int_eq(json_integer_value(json_object_get(last, "step")), 1500);
    json_t *ev = json_object_get(last, "ev");
    ck_assert_int_eq((int)json_array_size(ev), 2);
    ck_assert(json_real_value(json_array_get(ev, 0)) > 0.8 && json_real_value(json_array_get(ev, 1)) > 0.8);
    double l0 = json_real_value(json_object_get(last, "l0"));
    ck_assert(l0 > 0.5 && l0 < 8);
    json_t *hist = json_object_get(json_object_get(last, "density_hist"), "counts");
    long hsum = json_integer_value(json_object_get(last, "dead"));
    for (size_t i = 0; i < json_array_size(hist); i++)
        hsum += json_integer_value(json_array_get(hist, i));
    ck_assert_int_eq(hsum, c.H);
    json_t *train = json_array_get(lines, 4);
    ck_assert_str_eq(json_string_value(json_object_get(train, "split")), "train");
    ck_assert(json_real_value(json_object_get(train, "lambda")) == 0.5);
    json_decref(lines);
    free(rd);
    free(p.rows);
    ct_cc_trainer_free(t);
    ct_cc_source_close(&tr);
    ct_cc_source_close(&va);
}
END_TEST

/* ---- determinism and resume ---------------------------------------------------------- */

static float *random_rows(size_t n, int M, int d, uint64_t seed)
{
    float *x = malloc(sizeof(float) * n * M * d);
    ct_cc_rng r;
    ct_cc_rng_seed(&r, seed);
    for (size_t i = 0; i < n * M * d; i += 2) {
        double a, b;
        ct_cc_rng_normal2(&r, &a, &b);
        x[i] = (float)a;
        x[i + 1] = (float)b;
    }
    return x;
}

static ct_cc_config small_config(int type, uint64_t seed)
{
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.type = type;
    c.M = 2;
    c.d = 24;
    c.H = 64;
    c.batch = 32;
    c.steps = 40;
    c.lr = 1e-3f;
    c.seed = seed;
    c.log_every = 0;
    c.checkpoint_every = 0;
    c.k_start = 16;
    c.k_end = 4;
    c.k_anneal_steps = 20;
    c.threshold_start_step = 5;
    c.dead_tokens = 64;
    c.k_aux = 8;
    return c;
}

/* Trains `c` on rows and returns the final parameter block (malloc'd). */
static float *train_to_end(const ct_cc_config *c, const float *rows, size_t n, size_t *np)
{
    ct_cc_source s;
    ck_assert_int_eq(ct_cc_memsource_open(rows, n, c->M, c->d, NULL, 99, 1, &s), 0);
    ct_cc_trainer *t;
    ck_assert_int_eq(ct_cc_trainer_create(c, &s, NULL, NULL, &t), 0);
    ck_assert_int_eq(ct_cc_trainer_run(t), 0);
    ct_crosscoder *cc = ct_cc_trainer_model(t);
    *np = cc->n_params;
    float *out = malloc(*np * sizeof(float));
    memcpy(out, cc->mem, *np * sizeof(float));
    ct_cc_trainer_free(t);
    ct_cc_source_close(&s);
    return out;
}

START_TEST(same_seed_bit_identical_other_seed_differs)
{
    float *rows = random_rows(300, 2, 24, 1);
    for (int type = CT_CC_L1; type <= CT_CC_BATCHTOPK; type++) {
        ct_cc_config c = small_config(type, 124);
        c.path = CT_CC_PATH_AUTO;
        size_t n1, n2, n3;
        float *a = train_to_end(&c, rows, 300, &n1);
        float *b = train_to_end(&c, rows, 300, &n2);
        ck_assert_uint_eq(n1, n2);
        ck_assert_int_eq(memcmp(a, b, n1 * sizeof(float)), 0);
        c.seed = 153;
        float *d = train_to_end(&c, rows, 300, &n3);
        ck_assert_int_ne(memcmp(a, d, n1 * sizeof(float)), 0);
        free(a);
        free(b);
        free(d);
    }
    free(rows);
}
END_TEST

typedef struct {
    const char *path;
    long kill_at;
} ckpt_ctx;

static int save_state(void *ctx, long step, const void *buf, size_t len)
{
    ckpt_ctx *k = ctx;
    return ct_write_file_atomic(k->path, buf, len);
}

static int kill_self(void *ctx, long step, const ct_cc_losses *l)
{
    ckpt_ctx *k = ctx;
    if (step == k->kill_at)
        raise(SIGKILL);
    return 0;
}

START_TEST(resume_after_sigkill_is_bit_identical)
{
    float *rows = random_rows(300, 2, 24, 2);
    char dir[PATH_MAX], path[PATH_MAX + 32];
    ct_test_tmpdir(dir, sizeof dir, "ccresume");
    /* Both children are forked before this process runs any OpenMP region: libgomp's
     * thread pool does not survive fork, so a child forked after it would hang. */
    long kill_at[2];
    for (int type = CT_CC_L1; type <= CT_CC_BATCHTOPK; type++) {
        ct_cc_config c = small_config(type, 6582);
        c.checkpoint_every = 3;
        snprintf(path, sizeof path, "%s/state-%d.bin", dir, type);
        /* A step chosen at random (seeded by the clock), on a checkpoint boundary or
         * not; the run dies there without any cleanup. */
        kill_at[type] = 4 + (long)(time(NULL) % 30) + type;
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            ct_cc_source s;
            if (ct_cc_memsource_open(rows, 300, c.M, c.d, NULL, 99, 1, &s))
                _exit(2);
            ct_cc_trainer *t;
            if (ct_cc_trainer_create(&c, &s, NULL, NULL, &t))
                _exit(3);
            ckpt_ctx k = {path, kill_at[type]};
            ct_cc_callbacks cb = {.ctx = &k, .on_checkpoint = save_state, .on_step = kill_self};
            ct_cc_trainer_set_callbacks(t, &cb);
            ct_cc_trainer_run(t);
            _exit(4); /* not reached: killed first */
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child did not die by SIGKILL (status %d)", st);
    }
    for (int type = CT_CC_L1; type <= CT_CC_BATCHTOPK; type++) {
        ct_cc_config c = small_config(type, 6582);
        c.checkpoint_every = 3;
        snprintf(path, sizeof path, "%s/state-%d.bin", dir, type);
        /* resume in this process */
        ct_cc_source s;
        ck_assert_int_eq(ct_cc_memsource_open(rows, 300, c.M, c.d, NULL, 99, 1, &s), 0);
        ct_cc_trainer *t;
        ck_assert_int_eq(ct_cc_trainer_create(&c, &s, NULL, NULL, &t), 0);
        ck_assert_int_eq(ct_cc_trainer_restore_file(t, path), 0);
        long at = ct_cc_trainer_steps_done(t);
        /* the step callback runs before that step's checkpoint, so the last state is from
         * the last multiple of 3 below kill_at */
        ck_assert_int_eq(at, (kill_at[type] - 1) / 3 * 3);
        ck_assert_int_eq(ct_cc_trainer_run(t), 0);
        size_t n;
        float *full = train_to_end(&c, rows, 300, &n);
        ct_crosscoder *cc = ct_cc_trainer_model(t);
        ck_assert_uint_eq(n, cc->n_params);
        ck_assert_msg(memcmp(full, cc->mem, n * sizeof(float)) == 0,
                      "type %d: resumed from step %ld (killed at %ld) differs from the uninterrupted run", type, at,
                      kill_at[type]);
        free(full);
        ct_cc_trainer_free(t);
        ct_cc_source_close(&s);
    }
    free(rows);
}
END_TEST

START_TEST(state_rejects_damage_and_other_configs)
{
    float *rows = random_rows(100, 2, 24, 3);
    ct_cc_config c = small_config(CT_CC_L1, 1);
    ct_cc_source s;
    ck_assert_int_eq(ct_cc_memsource_open(rows, 100, c.M, c.d, NULL, 1, 1, &s), 0);
    ct_cc_trainer *t;
    ck_assert_int_eq(ct_cc_trainer_create(&c, &s, NULL, NULL, &t), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ct_cc_trainer_step(t, NULL), 0);
    void *buf;
    size_t len;
    ck_assert_int_eq(ct_cc_trainer_save(t, &buf, &len), 0);
    ck_assert_int_eq(ct_cc_trainer_restore(t, buf, len, "ok.bin"), 0);
    ck_assert_int_eq(ct_cc_trainer_steps_done(t), 3);
    ((uint8_t *)buf)[len / 2] ^= 1;
    ck_assert_int_eq(ct_cc_trainer_restore(t, buf, len, "flipped.bin"), CT_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "flipped.bin"));
    ((uint8_t *)buf)[len / 2] ^= 1;
    ck_assert_int_eq(ct_cc_trainer_restore(t, buf, len - 7, "short.bin"), CT_ECORRUPT);
    ck_assert_int_eq(ct_cc_trainer_restore(t, buf, 5, "tiny.bin"), CT_EFORMAT);
    ct_cc_config c2 = c;
    c2.lr = 2e-3f;
    ct_cc_trainer *t2;
    ck_assert_int_eq(ct_cc_trainer_create(&c2, &s, NULL, NULL, &t2), 0);
    ck_assert_int_eq(ct_cc_trainer_restore(t2, buf, len, "other.bin"), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "different crosscoder config"));
    free(buf);
    ct_cc_trainer_free(t);
    ct_cc_trainer_free(t2);
    ct_cc_source_close(&s);
    free(rows);
}
END_TEST

/* ---- artifact, folding, RelDec, sources ---------------------------------------------- */

START_TEST(artifact_fold_and_reldec)
{
    int M = 3, d = 10, H = 20, B = 16;
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.M = M;
    c.d = d;
    c.H = H;
    c.batch = B;
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_create(&c, &cc), 0);
    ct_cc_init(cc, 5);
    /* init: each (j,m) row has norm 0.08 and W_enc = W_decᵀ */
    for (int j = 0; j < H; j++)
        for (int m = 0; m < M; m++) {
            double s = 0;
            for (int i = 0; i < d; i++)
                s += pow(cc->p.W_dec[((size_t)j * M + m) * d + i], 2);
            ck_assert(fabs(sqrt(s) - 0.08) < 1e-6);
            for (int i = 0; i < d; i++)
                ck_assert(cc->p.W_enc[(size_t)(m * d + i) * H + j] == cc->p.W_dec[((size_t)j * M + m) * d + i]);
        }
    for (int j = 0; j < H; j++) {
        cc->p.b_enc[j] = 0.01f * (j % 5);
        for (int m = 0; m < M; m++) /* make norms differ per checkpoint */
            for (int i = 0; i < d; i++)
                cc->p.W_dec[((size_t)j * M + m) * d + i] *= (float)(1 + (j + m) % 3);
    }
    for (int i = 0; i < M * d; i++)
        cc->p.b_dec[i] = 0.001f * i;
    cc->scale[0] = 2.0f;
    cc->scale[1] = 0.5f;
    cc->scale[2] = 1.25f;
    /* RelDec by hand for latent 0: norms 0.08·(1,2,3) */
    float rd[20], ova[60];
    ck_assert_int_eq(ct_cc_reldec(cc, 0, 1, rd), 0);
    ck_assert(fabsf(rd[0] - 2.0f / 3.0f) < 1e-5f);
    ck_assert_int_eq(ct_cc_reldec_ova(cc, ova), 0);
    ck_assert(fabsf(ova[0] - 1.0f / 6) < 1e-5f && fabsf(ova[1] - 2.0f / 6) < 1e-5f && fabsf(ova[2] - 3.0f / 6) < 1e-5f);
    ck_assert_int_eq(ct_cc_reldec(cc, 1, 1, rd), CT_EINVAL);
    /* save/load round trip */
    void *buf;
    size_t len;
    ck_assert_int_eq(ct_cc_save(cc, &buf, &len), 0);
    ct_crosscoder *back;
    ck_assert_int_eq(ct_cc_load(buf, len, "mem", &back), 0);
    ck_assert_uint_eq(back->n_params, cc->n_params);
    ck_assert_int_eq(memcmp(back->mem, cc->mem, cc->n_params * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(back->scale, cc->scale, M * sizeof(float)), 0);
    ct_crosscoder *bad;
    for (size_t cut = 0; cut < len; cut += 1 + cut / 3) /* every truncation is refused */
        ck_assert_int_lt(ct_cc_load(buf, cut, "cut.ccm", &bad), 0);
    ((uint8_t *)buf)[100] ^= 4;
    ck_assert_int_eq(ct_cc_load(buf, len, "damaged.ccm", &bad), CT_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "damaged.ccm"));
    free(buf);
    /* folding: the folded model on raw rows equals the unfolded one on scaled rows */
    float *raw = random_rows(B, M, d, 4), *scaled = malloc(sizeof(float) * B * M * d);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < M * d; i++)
            scaled[b * M * d + i] = raw[b * M * d + i] * cc->scale[i / d];
    float *f1 = malloc(sizeof(float) * B * H), *f2 = malloc(sizeof(float) * B * H);
    float *x1 = malloc(sizeof(float) * B * M * d), *x2 = malloc(sizeof(float) * B * M * d);
    ck_assert_int_eq(ct_cc_encode(cc, scaled, B, f1), 0);
    ck_assert_int_eq(ct_cc_decode(cc, f1, B, x1), 0);
    ck_assert_int_eq(ct_cc_fold(back), 0);
    ck_assert_int_eq(ct_cc_fold(back), CT_EINVAL);
    ck_assert_int_eq(ct_cc_encode(back, raw, B, f2), 0);
    ck_assert_int_eq(ct_cc_decode(back, f2, B, x2), 0);
    int active = 0;
    for (int e = 0; e < B * H; e++) {
        ck_assert(fabsf(f1[e] - f2[e]) <= 1e-5f * fmaxf(1, fabsf(f1[e])));
        active += f1[e] > 0;
    }
    ck_assert_int_gt(active, 0);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < M * d; i++)
            ck_assert(fabsf(x1[b * M * d + i] / cc->scale[i / d] - x2[b * M * d + i]) <= 1e-5f);
    /* RelDec is computed on unfolded norms either way */
    float rd2[20];
    ck_assert_int_eq(ct_cc_reldec(cc, 0, 2, rd), 0);
    ck_assert_int_eq(ct_cc_reldec(back, 0, 2, rd2), 0);
    for (int j = 0; j < H; j++)
        ck_assert(fabsf(rd[j] - rd2[j]) < 1e-5f);
    free(raw);
    free(scaled);
    free(f1);
    free(f2);
    free(x1);
    free(x2);
    ct_cc_free(back);
    ct_cc_free(cc);
}
END_TEST

START_TEST(memsource_permutes_and_seeks)
{
    size_t n = 50;
    int M = 2, d = 3;
    float *rows = malloc(sizeof(float) * n * M * d);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < M * d; k++)
            rows[i * M * d + k] = (float)i + 0.001f * k;
    float scale[2] = {2.0f, 3.0f};
    ct_cc_source s;
    ck_assert_int_eq(ct_cc_memsource_open(rows, n, M, d, scale, 42, 1, &s), 0);
    float out[6];
    int seen[2][50] = {{0}};
    int order[2][50];
    for (int e = 0; e < 2; e++)
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(s.next(s.ctx, out, 1), 0);
            int r = (int)lrintf(out[0] / 2.0f);
            ck_assert(fabsf(out[3] - 3.0f * ((float)r + 0.003f)) < 1e-4f); /* scaled per checkpoint */
            seen[e][r]++;
            order[e][i] = r;
        }
    int same = 0, moved = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(seen[0][i], 1);
        ck_assert_int_eq(seen[1][i], 1);
        same += order[0][i] == order[1][i];
        moved += order[0][i] != (int)i;
    }
    ck_assert_int_lt(same, (int)n);
    ck_assert_int_gt(moved, (int)n / 2);
    ct_cc_cursor cur;
    ck_assert_int_eq(s.tell(s.ctx, &cur), 0);
    ck_assert(cur.epoch == 1 && cur.index == n);
    /* seek back into epoch 1 and read the same rows again */
    ct_cc_cursor mid = {1, 17};
    ck_assert_int_eq(s.seek(s.ctx, &mid), 0);
    ck_assert_int_eq(s.next(s.ctx, out, 1), 0);
    ck_assert_int_eq((int)lrintf(out[0] / 2.0f), order[1][17]);
    ct_cc_cursor badc = {0, 51};
    ck_assert_int_eq(s.seek(s.ctx, &badc), CT_EINVAL);
    ct_cc_source_close(&s);
    /* normalisation estimate: s_m = sqrt(d) / mean ‖x_m‖ */
    ct_cc_source u;
    ck_assert_int_eq(ct_cc_memsource_open(rows, n, M, d, NULL, 0, 0, &u), 0);
    float sc[2];
    ck_assert_int_eq(ct_cc_estimate_scale(&u, n, 7, sc), 0);
    for (int m = 0; m < M; m++) {
        double mean = 0;
        for (size_t i = 0; i < n; i++) {
            double s2 = 0;
            for (int k = 0; k < d; k++)
                s2 += pow(rows[i * M * d + m * d + k], 2);
            mean += sqrt(s2) / n;
        }
        ck_assert(fabs(sc[m] - sqrt(3.0) / mean) < 1e-6 * sc[m]);
    }
    ct_cc_source_close(&u);
    free(rows);
}
END_TEST


START_TEST(export_safetensors_with_reference_names)
{
    int M = 3, d = 5, H = 7;
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.M = M;
    c.d = d;
    c.H = H;
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_create(&c, &cc), 0);
    ct_cc_init(cc, 9);
    for (int j = 0; j < H; j++)
        cc->p.b_enc[j] = 0.5f * j;
    for (int i = 0; i < M * d; i++)
        cc->p.b_dec[i] = -0.25f * i;
    cc->scale[0] = 2.2521f;
    cc->scale[1] = 2.5277f;
    cc->scale[2] = 0.8227f;
    char dir[PATH_MAX], st[PATH_MAX + 32], js[PATH_MAX + 32], st2[PATH_MAX + 32];
    ct_test_tmpdir(dir, sizeof dir, "ccexport");
    snprintf(st, sizeof st, "%s/cc.safetensors", dir);
    snprintf(st2, sizeof st2, "%s/cc2.safetensors", dir);
    snprintf(js, sizeof js, "%s/cc.json", dir);
    ck_assert_int_eq(ct_cc_export_safetensors(cc, st, js), 0);
    ck_assert_int_eq(ct_cc_export_safetensors(cc, st2, NULL), 0);
    char *a, *b;
    size_t la, lb;
    ck_assert_int_eq(ct_read_file(st, &a, &la), 0);
    ck_assert_int_eq(ct_read_file(st2, &b, &lb), 0);
    ck_assert(la == lb && memcmp(a, b, la) == 0); /* deterministic bytes */
    free(a);
    free(b);
    ct_safetensors *f;
    ck_assert_int_eq(ct_safetensors_open(st, &f), 0);
    ck_assert_uint_eq(ct_safetensors_count(f), 4);
    struct { const char *name; int ndim; int64_t shape[3]; const float *data; size_t n; } want[4] = {
        {"W_enc", 3, {M, d, H}, cc->p.W_enc, (size_t)M * d * H},
        {"b_enc", 1, {H}, cc->p.b_enc, (size_t)H},
        {"W_dec", 3, {H, M, d}, cc->p.W_dec, (size_t)H * M * d},
        {"b_dec", 2, {M, d}, cc->p.b_dec, (size_t)M * d}};
    for (int i = 0; i < 4; i++) {
        ct_tensor_view v;
        ck_assert_int_eq(ct_safetensors_find(f, want[i].name, &v), 0);
        ck_assert_int_eq(v.dtype, CT_DT_F32);
        ck_assert_int_eq(v.ndim, want[i].ndim);
        for (int k = 0; k < v.ndim; k++)
            ck_assert_int_eq(v.shape[k], want[i].shape[k]);
        ck_assert_uint_eq(v.numel, want[i].n);
        ck_assert_int_eq(memcmp(v.data, want[i].data, want[i].n * sizeof(float)), 0);
    }
    const char *meta = ct_safetensors_meta(f, "config");
    ck_assert_ptr_nonnull(meta);
    json_error_t err;
    json_t *cfg = json_loads(meta, 0, &err), *cfg2 = json_load_file(js, 0, &err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_ptr_nonnull(cfg2);
    ck_assert(json_equal(cfg, cfg2));
    ck_assert_int_eq(json_integer_value(json_object_get(cfg, "n_models")), M);
    ck_assert_int_eq(json_integer_value(json_object_get(cfg, "dict_size")), H);
    ck_assert_str_eq(json_string_value(json_object_get(cfg, "type")), "l1");
    json_t *sf = json_object_get(cfg, "normalisation_factors");
    ck_assert_int_eq((int)json_array_size(sf), M);
    ck_assert(fabs(json_real_value(json_array_get(sf, 1)) - 2.5277) < 1e-6);
    ck_assert(json_is_false(json_object_get(cfg, "folded")));
    json_decref(cfg);
    json_decref(cfg2);
    ct_safetensors_close(f);
    ct_cc_free(cc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crosscoder_train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, planted_features_recovered_and_classified);
    tcase_add_test(tc, same_seed_bit_identical_other_seed_differs);
    tcase_add_test(tc, resume_after_sigkill_is_bit_identical);
    tcase_add_test(tc, state_rejects_damage_and_other_configs);
    tcase_add_test(tc, artifact_fold_and_reldec);
    tcase_add_test(tc, memsource_permutes_and_seeks);
    tcase_add_test(tc, export_safetensors_with_reference_names);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}
