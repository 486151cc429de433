#include "pipeline/steps/shard.h"
#include "models/checkpoint/checkpoint.h"
#include "common/error.h"
#include "common/sha256.h"
#include "models/corpus/corpus.h"
#include "pipeline/key.h"
#include "pipeline/steps/langtab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* --- token shards ------------------------------------------------------------------ */

int ct_tokshard_parse(const void *buf, size_t len, const char *name, ct_tokshard *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = buf;
    if (len < CT_TOKSHARD_HEADER || memcmp(p, CT_TOKSHARD_MAGIC, 8) != 0)
        return ct_error_set(CT_ECORRUPT, "%s: not a token shard (bad magic or truncated)", name);
    uint32_t version = get_u32(p + 8);
    if (version != CT_TOKSHARD_VERSION)
        return ct_error_set(CT_EFORMAT, "%s: token shard version %u is not supported (expected %d)", name,
                            version, CT_TOKSHARD_VERSION);
    uint32_t T = get_u32(p + 12);
    uint64_t n = get_u64(p + 16);
    /* 20 bytes per sequence at least: guards the products below against overflow */
    if (T == 0 || T > (1u << 24) || n > (len - CT_TOKSHARD_HEADER) / 20)
        return ct_error_set(CT_ECORRUPT, "%s: token shard header is invalid (seq_len %u, %llu sequences)",
                            name, T, (unsigned long long)n);
    uint64_t want = CT_TOKSHARD_HEADER + n * T * 4 + n * 16;
    if (want != len)
        return ct_error_set(CT_ECORRUPT, "%s: token shard has %zu bytes, its header implies %llu", name,
                            len, (unsigned long long)want);
    out->seq_len = T;
    out->n_seq = n;
    out->ids = malloc(n * T * 4 + 1);
    out->seq_index = malloc(n * 8 + 1);
    out->doc_index = malloc(n * 8 + 1);
    if (!out->ids || !out->seq_index || !out->doc_index) {
        ct_tokshard_free(out);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    const uint8_t *q = p + CT_TOKSHARD_HEADER;
    for (uint64_t i = 0; i < n * T; i++)
        out->ids[i] = (int32_t)get_u32(q + 4 * i);
    q += n * T * 4;
    for (uint64_t i = 0; i < n; i++) {
        out->seq_index[i] = get_u64(q + 8 * i);
        out->doc_index[i] = get_u64(q + 8 * (n + i));
    }
    return 0;
}

void ct_tokshard_free(ct_tokshard *s)
{
    if (!s)
        return;
    free(s->ids);
    free(s->seq_index);
    free(s->doc_index);
    memset(s, 0, sizeof *s);
}

int ct_tokshard_read(ct_step_ctx *ctx, const char *input, size_t i, ct_tokshard *out)
{
    char *data;
    size_t len;
    int rc = ct_steps_read_input(ctx, input, i, &data, &len);
    if (rc)
        return rc;
    char name[512];
    snprintf(name, sizeof name, "%s: input %s[%zu]", ct_step_label(ctx), input, i);
    rc = ct_tokshard_parse(data, len, name, out);
    free(data);
    return rc;
}

int ct_tokshard_write_header(ct_blob_writer *w, uint32_t seq_len, uint64_t n_seq)
{
    uint8_t h[CT_TOKSHARD_HEADER];
    memcpy(h, CT_TOKSHARD_MAGIC, 8);
    put_u32(h + 8, CT_TOKSHARD_VERSION);
    put_u32(h + 12, seq_len);
    put_u64(h + 16, n_seq);
    return ct_blob_write(w, h, sizeof h);
}

int ct_steps_write_i32(ct_blob_writer *w, const int32_t *v, size_t n)
{
    uint8_t buf[4096];
    size_t nb = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        put_u32(buf + nb, (uint32_t)v[i]);
        if ((nb += 4) == sizeof buf) {
            rc = ct_blob_write(w, buf, nb);
            nb = 0;
        }
    }
    return !rc && nb ? ct_blob_write(w, buf, nb) : rc;
}

int ct_steps_write_u64(ct_blob_writer *w, const uint64_t *v, size_t n)
{
    uint8_t buf[4096];
    size_t nb = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        put_u64(buf + nb, v[i]);
        if ((nb += 8) == sizeof buf) {
            rc = ct_blob_write(w, buf, nb);
            nb = 0;
        }
    }
    return !rc && nb ? ct_blob_write(w, buf, nb) : rc;
}

int ct_tokshard_write(ct_blob_writer *w, const ct_tokshard *s)
{
    int rc = ct_tokshard_write_header(w, s->seq_len, s->n_seq);
    if (!rc)
        rc = ct_steps_write_i32(w, s->ids, (size_t)(s->n_seq * s->seq_len));
    if (!rc)
        rc = ct_steps_write_u64(w, s->seq_index, (size_t)s->n_seq);
    if (!rc)
        rc = ct_steps_write_u64(w, s->doc_index, (size_t)s->n_seq);
    return rc;
}

int ct_tokshard_header(ct_blob_reader *r, const char *name, uint32_t *seq_len, uint64_t *n_seq)
{
    uint64_t size = ct_blob_size(r);
    uint8_t h[CT_TOKSHARD_HEADER];
    if (size < CT_TOKSHARD_HEADER)
        return ct_error_set(CT_ECORRUPT, "%s: not a token shard (%llu bytes)", name, (unsigned long long)size);
    int rc = ct_blob_read_at(r, 0, h, sizeof h);
    if (rc)
        return rc;
    if (memcmp(h, CT_TOKSHARD_MAGIC, 8) != 0 || get_u32(h + 8) != CT_TOKSHARD_VERSION)
        return ct_error_set(CT_ECORRUPT, "%s: not a version %d token shard", name, CT_TOKSHARD_VERSION);
    uint32_t T = get_u32(h + 12);
    uint64_t n = get_u64(h + 16);
    uint64_t want = CT_TOKSHARD_HEADER + n * T * 4 + n * 16;
    uint8_t tail[8];
    if (T == 0 || T > (1u << 24) || n > (size - CT_TOKSHARD_HEADER) / 20 || size < want ||
        /* only the language table of a corpus.mix (langtab.h) may follow */
        (size != want && (size - want < 8 || ct_blob_read_at(r, want, tail, 8) != 0 ||
                          memcmp(tail, CT_LANGTAB_MAGIC, 8) != 0)))
        return ct_error_set(CT_ECORRUPT, "%s: token shard header is inconsistent with its %llu bytes", name,
                            (unsigned long long)size);
    *seq_len = T;
    *n_seq = n;
    return 0;
}

/* --- activation shards ------------------------------------------------------------ */

uint64_t ct_actshard_data_offset(uint64_t rows)
{
    uint64_t off = CT_ACTSHARD_HEADER + rows * 4;
    return (off + 63) / 64 * 64;
}

void ct_actshard_encode_header(const ct_actshard_info *h, uint8_t *out)
{
    memset(out, 0, CT_ACTSHARD_HEADER);
    memcpy(out, CT_ACTSHARD_MAGIC, 8);
    put_u32(out + 8, CT_ACTSHARD_VERSION);
    put_u32(out + 12, h->dtype);
    put_u32(out + 16, h->d);
    put_u32(out + 20, h->seq_len);
    put_u64(out + 24, h->n_seq);
    put_u64(out + 32, h->rows);
    put_u64(out + 40, h->data_offset);
    memcpy(out + 48, h->token_key, 64);
}

int ct_actshard_header(ct_blob_reader *r, const char *name, ct_actshard_info *out)
{
    memset(out, 0, sizeof *out);
    uint64_t size = ct_blob_size(r);
    uint8_t h[CT_ACTSHARD_HEADER];
    if (size < CT_ACTSHARD_HEADER)
        return ct_error_set(CT_ECORRUPT, "%s: not an activation shard (%llu bytes)", name,
                            (unsigned long long)size);
    int rc = ct_blob_read_at(r, 0, h, sizeof h);
    if (rc)
        return rc;
    if (memcmp(h, CT_ACTSHARD_MAGIC, 8) != 0)
        return ct_error_set(CT_ECORRUPT, "%s: not an activation shard (bad magic)", name);
    if (get_u32(h + 8) != CT_ACTSHARD_VERSION)
        return ct_error_set(CT_EFORMAT, "%s: activation shard version %u is not supported (expected %d)",
                            name, get_u32(h + 8), CT_ACTSHARD_VERSION);
    out->dtype = get_u32(h + 12);
    out->d = get_u32(h + 16);
    out->seq_len = get_u32(h + 20);
    out->n_seq = get_u64(h + 24);
    out->rows = get_u64(h + 32);
    out->data_offset = get_u64(h + 40);
    memcpy(out->token_key, h + 48, 64);
    out->token_key[64] = '\0';
    if ((out->dtype != CT_ACT_BF16 && out->dtype != CT_ACT_FP16) || out->d == 0 || out->d > (1u << 20) ||
        out->seq_len < 2 || out->rows != out->n_seq * (out->seq_len - 1) || out->rows > size / 4 ||
        out->data_offset != ct_actshard_data_offset(out->rows) ||
        size != out->data_offset + out->rows * out->d * 2)
        return ct_error_set(CT_ECORRUPT, "%s: activation shard header is inconsistent with its %llu bytes",
                            name, (unsigned long long)size);
    return 0;
}

/* --- 16-bit floats ------------------------------------------------------------------ */

uint16_t ct_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float ct_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t ct_f32_to_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* subnormal or zero in fp16: round x * 2^24 to an integer */
        float f;
        memcpy(&f, &a, 4);
        float scaled = f * 16777216.0f; /* exact: a power of two */
        return (uint16_t)(sign | (uint32_t)lrintf(scaled));
    }
    uint32_t mant = a & 0x7fffffu, e = (a >> 23) - 112;
    uint32_t h = e << 10 | mant >> 13;
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float ct_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu;
    float x;
    if (e == 0) {
        x = ldexpf((float)m, -24);
        return sign ? -x : x;
    }
    uint32_t u = e == 31 ? sign | 0x7f800000u | m << 13 : sign | (e + 112) << 23 | m << 13;
    memcpy(&x, &u, 4);
    return x;
}

int ct_act_dtype_parse(const char *name)
{
    if (name && strcmp(name, "bf16") == 0)
        return CT_ACT_BF16;
    if (name && strcmp(name, "fp16") == 0)
        return CT_ACT_FP16;
    return 0;
}

/* --- plan helpers ------------------------------------------------------------------- */

static long long get_ll(const ct_recipe *r, const char *path)
{
    json_t *v = ct_recipe_get(r, path);
    return json_is_integer(v) ? (long long)json_integer_value(v) : (long long)json_number_value(v);
}

int ct_steps_budget_of(const ct_recipe *r, ct_steps_budget *out)
{
    out->seq_len = get_ll(r, "corpus.seq_len");
    out->n_train = get_ll(r, "corpus.train_sequences");
    out->n_val = get_ll(r, "corpus.val_sequences");
    out->n_test = get_ll(r, "corpus.test_sequences");
    out->per_shard = get_ll(r, "corpus.shard_sequences");
    out->seed = get_ll(r, "corpus.seed");
    if (out->seq_len < 2)
        return ct_error_set(CT_EINVAL, "%s: corpus.seq_len must be at least 2 (the first position is "
                            "dropped), got %lld", ct_recipe_path(r), out->seq_len);
    if (out->per_shard < 1 || out->n_train < 0 || out->n_val < 0 || out->n_test < 0)
        return ct_error_set(CT_EINVAL, "%s: corpus sequence counts must be >= 0 and shard_sequences >= 1",
                            ct_recipe_path(r));
    if (out->n_train == 0) {
        long long tokens = get_ll(r, "crosscoder.tokens");
        out->n_train = (tokens + out->seq_len - 2) / (out->seq_len - 1);
    }
    if (out->n_train < 1)
        return ct_error_set(CT_EINVAL, "%s: no training sequences (corpus.train_sequences and "
                            "crosscoder.tokens are 0)", ct_recipe_path(r));
    return 0;
}

size_t ct_steps_n_shards(long long n, long long per_shard)
{
    return n <= 0 ? 0 : (size_t)((n + per_shard - 1) / per_shard);
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The codes of corpus.mix sorted with strcmp (borrowed strings; *codes is malloc'd), so
 * that the order a recipe or --set writes them in changes neither keys nor documents. */
static int mix_codes(const ct_recipe *r, const char ***codes, size_t *n)
{
    json_t *mix = ct_recipe_get(r, "corpus.mix"), *v;
    const char *code;
    *n = 0;
    *codes = malloc((json_object_size(mix) + 1) * sizeof **codes);
    if (!*codes)
        return ct_error_set(CT_ENOMEM, "out of memory");
    json_object_foreach(mix, code, v) (*codes)[(*n)++] = code;
    qsort(*codes, *n, sizeof **codes, cmp_cstr);
    return 0;
}

/* The dotted paths of the corpus's patterns, in reading order: corpus.files.<i>, or
 * corpus.mix.<code>.files.<i> language by language (sorted codes). */
static json_t *corpus_patterns(const ct_recipe *r)
{
    json_t *out = json_array();
    char dotted[300];
    if (!ct_recipe_get(r, "corpus.mix")) {
        for (size_t i = 0; i < json_array_size(ct_recipe_get(r, "corpus.files")); i++) {
            snprintf(dotted, sizeof dotted, "corpus.files.%zu", i);
            json_array_append_new(out, json_string(dotted));
        }
        return out;
    }
    const char **codes;
    size_t n;
    if (mix_codes(r, &codes, &n)) {
        ct_error_clear();
        return out;
    }
    for (size_t l = 0; l < n; l++) {
        snprintf(dotted, sizeof dotted, "corpus.mix.%s.files", codes[l]);
        for (size_t i = 0; i < json_array_size(ct_recipe_get(r, dotted)); i++) {
            char one[340];
            snprintf(one, sizeof one, "%s.%zu", dotted, i);
            json_array_append_new(out, json_string(one));
        }
    }
    free(codes);
    return out;
}

/* Expands the pattern at `dotted` (resolved relative to the recipe). */
static int expand_at(const ct_recipe *r, const char *dotted, char ***paths, size_t *np)
{
    char *pattern = NULL;
    *paths = NULL;
    *np = 0;
    int rc = ct_recipe_resolve_path(r, dotted, &pattern);
    if (!rc) {
        const char *pp = pattern;
        if ((rc = ct_corpus_expand(&pp, 1, paths, np)))
            rc = ct_error_wrap(rc, "%s: %s", ct_recipe_path(r), dotted);
    }
    free(pattern);
    return rc;
}

int ct_steps_corpus_sources(ct_plan *plan, const ct_recipe *r, json_t **labels)
{
    int rc = 0; /* the recipe loader checked corpus.files / corpus.mix */
    *labels = json_array();
    json_t *patterns = corpus_patterns(r), *dv;
    size_t i;
    json_array_foreach(patterns, i, dv) {
        char **paths = NULL;
        size_t np = 0;
        if ((rc = expand_at(r, json_string_value(dv), &paths, &np)))
            break;
        for (size_t k = 0; k < np && !rc; k++) {
            const char *label;
            if (!(rc = ct_plan_source_file(plan, paths[k], &label)))
                json_array_append_new(*labels, json_string(label));
        }
        ct_corpus_paths_free(paths, np);
        if (rc)
            break;
    }
    json_decref(patterns);
    if (!rc && json_array_size(*labels) == 0)
        rc = ct_error_set(CT_EINVAL, "%s: the corpus lists no file", ct_recipe_path(r));
    if (rc) {
        json_decref(*labels);
        *labels = NULL;
    }
    return rc;
}

/* corpus.download with every "{dir}" replaced by `dir` (malloc'd). */
static char *download_hint(const char *text, const char *dir)
{
    size_t n = strlen(text) + 1, dl = strlen(dir);
    for (const char *p = text; (p = strstr(p, "{dir}")); p += 5)
        n += dl;
    char *out = malloc(n), *o = out;
    if (!out)
        return NULL;
    for (const char *p = text; *p;) {
        if (strncmp(p, "{dir}", 5) == 0) {
            memcpy(o, dir, dl);
            o += dl;
            p += 5;
        } else
            *o++ = *p++;
    }
    *o = '\0';
    return out;
}

int ct_steps_corpus_available(ct_plan *plan, const ct_recipe *r)
{
    int all = 1;
    const char *download = json_string_value(ct_recipe_get(r, "corpus.download"));
    json_t *patterns = corpus_patterns(r);
    int mix = ct_recipe_get(r, "corpus.mix") != NULL;
    char *first = NULL, *also = strdup(""), *hint = NULL;
    for (size_t i = 0; i < json_array_size(patterns); i++) {
        char *pattern = NULL, **paths = NULL;
        size_t np = 0;
        const char *dotted = json_string_value(json_array_get(patterns, i));
        if (ct_recipe_resolve_path(r, dotted, &pattern)) {
            ct_error_clear();
            json_decref(patterns);
            free(first);
            free(also);
            free(hint);
            return 1; /* ct_steps_corpus_sources reports it */
        }
        const char *pp = pattern;
        int found = ct_corpus_expand(&pp, 1, &paths, &np) == 0 && np > 0;
        if (found) { /* a plain name is kept by the expansion even when it does not exist */
            struct stat st;
            for (size_t k = 0; k < np && found; k++)
                found = stat(paths[k], &st) == 0;
        }
        ct_corpus_paths_free(paths, np);
        ct_error_clear();
        if (!found && mix && !all) { /* a mixture's missing languages make one note */
            size_t n = strlen(also) + strlen(pattern) + strlen(dotted) + 8;
            char *more = malloc(n);
            if (more)
                snprintf(more, n, "%s, %s (%s)", also, pattern, dotted);
            free(also);
            also = more ? more : strdup("");
        } else if (!found) {
            /* The directory the files are expected in: the pattern up to the last '/'
             * before its first glob character. */
            size_t glob = strcspn(pattern, "*?["), cut = 0;
            for (size_t k = 0; k < glob; k++)
                if (pattern[k] == '/')
                    cut = k;
            char *dir = cut ? strndup(pattern, cut) : strdup(pattern[0] == '/' ? "/" : ".");
            free(first);
            first = malloc(strlen(pattern) + strlen(dotted) + 8);
            if (first)
                sprintf(first, "%s (%s)", pattern, dotted);
            free(hint);
            hint = download && *download && dir ? download_hint(download, dir) : NULL;
            if (!mix)
                ct_plan_missing(plan, "corpus: no file matches %s; %s%s", first ? first : pattern,
                                hint ? "get the corpus from " : "put the corpus files there", hint ? hint : "");
            free(dir);
            all = 0;
        }
        free(pattern);
    }
    if (mix && !all)
        ct_plan_missing(plan, "corpus: no file matches %s%s; %s%s", first ? first : "?", also ? also : "",
                        hint ? "get the corpus from " : "put the corpus files there", hint ? hint : "");
    free(first);
    free(also);
    free(hint);
    json_decref(patterns);
    return all;
}

json_t *ct_steps_corpus_params(const ct_recipe *r)
{
    json_t *params = json_pack("{s:O, s:O}", "format", ct_recipe_get(r, "corpus.format"), "text_field",
                               ct_recipe_get(r, "corpus.text_field"));
    const char **codes;
    size_t n;
    if (!ct_recipe_get(r, "corpus.mix") || mix_codes(r, &codes, &n)) {
        ct_error_clear();
        return params;
    }
    /* Per language (sorted codes, as the corpus inputs are listed): its weight and how
     * many of the corpus inputs, in order, are its files. */
    json_t *mix = json_array();
    for (size_t l = 0; l < n; l++) {
        char dotted[300];
        size_t nfiles = 0;
        snprintf(dotted, sizeof dotted, "corpus.mix.%s.files", codes[l]);
        for (size_t i = 0; i < json_array_size(ct_recipe_get(r, dotted)); i++) {
            char one[340], **paths;
            size_t np;
            snprintf(one, sizeof one, "%s.%zu", dotted, i);
            if (expand_at(r, one, &paths, &np) == 0)
                nfiles += np;
            ct_error_clear(); /* ct_steps_corpus_sources reports it */
            ct_corpus_paths_free(paths, np);
        }
        snprintf(dotted, sizeof dotted, "corpus.mix.%s.weight", codes[l]);
        json_array_append_new(mix, json_pack("{s:s, s:O, s:I}", "language", codes[l], "weight",
                                             ct_recipe_get(r, dotted), "files", (json_int_t)nfiles));
    }
    free(codes);
    json_object_set_new(params, "mix", mix);
    return params;
}

int ct_steps_corpus_open(ct_step_ctx *ctx, const char *input, ct_corpus **out)
{
    *out = NULL;
    json_t *p = ct_step_params(ctx), *mix = json_object_get(p, "mix"), *l;
    const char *field = json_string_value(json_object_get(p, "text_field"));
    ct_corpus_format fmt;
    int rc = ct_corpus_format_parse(json_string_value(json_object_get(p, "format")), &fmt);
    size_t nf = ct_step_input_count(ctx, input), nl = json_array_size(mix), used = 0, i;
    const char **files = calloc(nf + 1, sizeof *files);
    ct_corpus_lang_spec *langs = calloc(nl + 1, sizeof *langs);
    if (!rc && (!files || !langs))
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    for (i = 0; i < nf && !rc; i++)
        files[i] = ct_step_input_path(ctx, input, i);
    json_array_foreach(mix, i, l) {
        json_int_t n = json_integer_value(json_object_get(l, "files"));
        if (rc)
            break;
        if (n < 1 || (size_t)n > nf - used) {
            rc = ct_error_set(CT_EINVAL, "%s: corpus language %s has %lld of the %zu corpus inputs left, %zu",
                              ct_step_label(ctx), json_string_value(json_object_get(l, "language")),
                              (long long)n, nf, nf - used);
            break;
        }
        langs[i] = (ct_corpus_lang_spec){json_string_value(json_object_get(l, "language")), files + used,
                                         (size_t)n, json_number_value(json_object_get(l, "weight"))};
        used += (size_t)n;
    }
    if (!rc && nl && used != nf)
        rc = ct_error_set(CT_EINVAL, "%s: the corpus languages name %zu of the %zu corpus inputs",
                          ct_step_label(ctx), used, nf);
    if (!rc)
        rc = nl ? ct_corpus_open_mix(langs, nl, fmt, field, out) : ct_corpus_open(files, nf, fmt, field, out);
    free(files);
    free(langs);
    return rc;
}

int ct_steps_checkpoints_plannable(const ct_recipe *r)
{
    json_t *ck = ct_recipe_get(r, "model.checkpoints");
    size_t i;
    json_t *c;
    json_array_foreach(ck, i, c) {
        const char *src = json_string_value(json_object_get(c, "source"));
        if (!src || (strncmp(src, "pretrain:", 9) == 0 && !ct_recipe_get(r, "pretrain")))
            return 0;
    }
    return json_array_size(ck) > 0;
}

int ct_steps_checkpoint_available(ct_plan *plan, const ct_recipe *r, size_t m)
{
    char dotted[64], *src = NULL, *dir = NULL;
    snprintf(dotted, sizeof dotted, "model.checkpoints.%zu.source", m);
    json_t *ck = json_array_get(ct_recipe_get(r, "model.checkpoints"), m);
    const char *source = json_string_value(json_object_get(ck, "source"));
    if (source && strncmp(source, "pretrain:", 9) == 0) { /* trained by the plan itself */
        char label[64];
        size_t idx;
        snprintf(label, sizeof label, "pretrain/%s", source + 9);
        if (ct_plan_find(plan, label, &idx) == 0)
            return 1;
        ct_plan_note(plan, "checkpoint %s is not available: step %s is not planned (no corpus to pretrain on)",
                     json_string_value(json_object_get(ck, "name")), label);
        return 0;
    }
    int ok = ct_recipe_resolve_path(r, dotted, &src) == 0 && ct_ckpt_resolve(src, &dir) == 0;
    if (!ok)
        ct_plan_missing(plan, "checkpoint %s is not available: %s",
                        json_string_value(json_object_get(ck, "name")), ct_error_message());
    ct_error_clear();
    free(src);
    free(dir);
    return ok;
}

int ct_steps_checkpoints_available(ct_plan *plan, const ct_recipe *r)
{
    int all = 1;
    for (size_t m = 0; m < json_array_size(ct_recipe_get(r, "model.checkpoints")); m++)
        all &= ct_steps_checkpoint_available(plan, r, m);
    return all;
}

uint64_t ct_steps_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t ct_steps_permute(uint64_t i, uint64_t n, uint64_t key)
{
    if (n <= 1)
        return 0;
    int bits = 0;
    while (bits < 64 && (n - 1) >> bits)
        bits++;
    int half = (bits + 1) / 2;
    uint64_t mask = (1ull << half) - 1;
    do {
        uint64_t L = i >> half, R = i & mask;
        for (uint64_t round = 0; round < 4; round++) {
            uint64_t F = ct_steps_mix(R ^ ct_steps_mix(key + round)) & mask;
            uint64_t t = R;
            R = L ^ F;
            L = t;
        }
        i = L << half | R;
    } while (i >= n); /* cycle walking: the walk stays inside the bijection's orbit */
    return i;
}

int ct_steps_read_input(ct_step_ctx *ctx, const char *name, size_t i, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    ct_blob_reader *r;
    int rc = ct_step_input(ctx, name, i, &r);
    if (rc)
        return rc;
    rc = ct_blob_read_all(r, data, len);
    ct_blob_reader_close(r);
    return rc;
}

int ct_steps_input_key_hex(ct_step_ctx *ctx, const char *name, size_t i, char hex[65])
{
    json_t *rec;
    int rc = ct_step_input_record(ctx, name, i, &rec);
    if (rc)
        return rc;
    uint8_t key[CT_KEY_LEN];
    if ((rc = ct_key_of(json_object_get(rec, "material"), key)))
        return rc;
    ct_key_hex(key, hex);
    return 0;
}
