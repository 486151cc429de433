/* A checkpoint directory: config, weight files (single or sharded), and the table of
 * tensors under canonical names. */
#include "models/checkpoint/ckpt_internal.h"
#include "models/checkpoint/safetensors.h"
#include "models/checkpoint/torchbin.h"
#include "common/error.h"
#include "common/io.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *canon;
    ct_tensor_view v;     /* v.name is canon */
    const char *file;     /* base name of the file holding it */
    const char *raw_name; /* the name stored in the file */
} ck_entry;

struct ct_checkpoint {
    char *dir;
    ct_model_config cfg;
    ct_ckpt_files files;
    ct_safetensors **st;
    ct_torchbin **tb;
    ck_entry *e;
    size_t n;
};

/* ------------------------------------------------------------ weight files */

void ct_ckpt_files_free(ct_ckpt_files *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->paths[i]);
    free(f->paths);
    free(f->names);
    json_decref(f->weight_map);
    free(f->index_path);
    memset(f, 0, sizeof *f);
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int add_file(ct_ckpt_files *f, const char *dir, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return 0;
    char **p = realloc(f->paths, (f->n + 1) * sizeof *p);
    if (!p)
        return ct_error_set(CT_ENOMEM, "out of memory");
    f->paths = p;
    const char **nm = realloc(f->names, (f->n + 1) * sizeof *nm);
    if (!nm)
        return ct_error_set(CT_ENOMEM, "out of memory");
    f->names = nm;
    size_t dl = strlen(dir);
    if (!(p[f->n] = malloc(dl + strlen(name) + 2)))
        return ct_error_set(CT_ENOMEM, "out of memory");
    sprintf(p[f->n], "%s/%s", dir, name);
    nm[f->n] = p[f->n] + dl + 1;
    f->n++;
    return 0;
}

static int load_index(const char *dir, const char *index, ct_ckpt_files *f)
{
    char path[PATH_MAX], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, index);
    int rc = ct_read_file(path, &text, &len);
    if (rc)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!root)
        return ct_error_set(CT_ECORRUPT, "%s: invalid JSON at line %d: %s", path, jerr.line,
                            jerr.text);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        json_decref(root);
        return ct_error_set(CT_ECORRUPT, "%s: no \"weight_map\" object", path);
    }
    f->weight_map = json_incref(wm);
    json_decref(root);
    if (!(f->index_path = strdup(path)))
        return ct_error_set(CT_ENOMEM, "out of memory");
    /* shards in sorted name order, so the read order does not depend on the JSON */
    const char **names = malloc(json_object_size(wm) * sizeof *names);
    if (!names)
        return ct_error_set(CT_ENOMEM, "out of memory");
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach (wm, k, v) {
        const char *s = json_string_value(v);
        if (!s || !*s || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
            free(names);
            return ct_error_set(CT_ECORRUPT,
                                "%s: weight_map entry '%s' names an invalid shard "
                                "file",
                                path, k);
        }
        names[n++] = s;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: few distinct names, many repeats */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = add_file(f, dir, names[i]);
    free(names);
    return rc;
}

int ct_ckpt_list_weights(const char *dir, ct_ckpt_weights pref, ct_ckpt_files *f)
{
    memset(f, 0, sizeof *f);
    static const char *const idx[2] = {"model.safetensors.index.json",
                                       "pytorch_model.bin.index.json"};
    static const char *const one[2] = {"model.safetensors", "pytorch_model.bin"};
    char path[PATH_MAX];
    for (int kind = 0; kind < 2; kind++) {
        if ((pref == CT_CKPT_WEIGHTS_SAFETENSORS && kind == 1) ||
            (pref == CT_CKPT_WEIGHTS_PYTORCH && kind == 0))
            continue;
        f->pytorch = kind;
        int rc;
        snprintf(path, sizeof path, "%s/%s", dir, idx[kind]);
        if (exists(path))
            rc = load_index(dir, idx[kind], f);
        else {
            snprintf(path, sizeof path, "%s/%s", dir, one[kind]);
            if (!exists(path))
                continue;
            rc = add_file(f, dir, one[kind]);
        }
        if (rc)
            ct_ckpt_files_free(f);
        return rc;
    }
    return ct_error_set(CT_ENOTFOUND, "%s: no weights found (looked for %s)", dir,
                        pref == CT_CKPT_WEIGHTS_SAFETENSORS ? "model.safetensors[.index.json]"
                        : pref == CT_CKPT_WEIGHTS_PYTORCH
                            ? "pytorch_model.bin[.index.json]"
                            : "model.safetensors[.index.json], pytorch_model.bin[.index.json]");
}

/* ------------------------------------------------------------ canonical names */

static const char *arch_prefix(ct_arch a)
{
    return a == CT_ARCH_GPT_NEOX ? "gpt_neox." : a == CT_ARCH_BLOOM ? "transformer." : "model.";
}

static const char *arch_head(ct_arch a)
{
    return a == CT_ARCH_GPT_NEOX ? "embed_out.weight" : "lm_head.weight";
}

static const char *arch_embed(ct_arch a)
{
    return a == CT_ARCH_GPT_NEOX ? "gpt_neox.embed_in.weight"
           : a == CT_ARCH_BLOOM  ? "transformer.word_embeddings.weight"
                                 : "model.embed_tokens.weight";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Buffers that old checkpoints saved beside the parameters: causal-mask tables and
 * rotary frequencies, all recomputed from the config. */
static int is_buffer(const char *name)
{
    return ends_with(name, ".attention.bias") || ends_with(name, ".attention.masked_bias") ||
           ends_with(name, ".inv_freq");
}

/* transformers' save_pretrained names (base-model prefix) from whatever the file uses. */
static char *canonical(ct_arch a, const char *raw)
{
    const char *p = arch_prefix(a);
    int keep = strncmp(raw, p, strlen(p)) == 0 || strcmp(raw, arch_head(a)) == 0;
    char *s = malloc(strlen(p) + strlen(raw) + 1);
    if (s)
        sprintf(s, "%s%s", keep ? "" : p, raw);
    return s;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const ck_entry *)a)->canon, ((const ck_entry *)b)->canon);
}

static const ck_entry *find(const ct_checkpoint *c, const char *name)
{
    ck_entry key = {.canon = (char *)name};
    return bsearch(&key, c->e, c->n, sizeof *c->e, cmp_entry);
}

/* ------------------------------------------------------------ expected tensors */

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[2];
} want_t;

static void want(want_t *w, size_t *n, int64_t d0, int64_t d1, const char *fmt, int layer,
                 const char *suffix)
{
    want_t *x = &w[(*n)++];
    char base[128];
    if (strstr(fmt, "%d"))
        snprintf(base, sizeof base, fmt, layer);
    else
        snprintf(base, sizeof base, "%s", fmt);
    snprintf(x->name, sizeof x->name, "%s%s", base, suffix);
    x->shape[0] = d0;
    x->shape[1] = d1;
    x->ndim = d1 ? 2 : 1;
}

/* weight [out, in] and, when biased, bias [out] */
static void want_linear(want_t *w, size_t *n, const char *fmt, int l, int64_t out, int64_t in,
                        int bias)
{
    want(w, n, out, in, fmt, l, ".weight");
    if (bias)
        want(w, n, out, 0, fmt, l, ".bias");
}

static void want_norm(want_t *w, size_t *n, const char *fmt, int l, int64_t d)
{
    want(w, n, d, 0, fmt, l, ".weight");
    want(w, n, d, 0, fmt, l, ".bias");
}

/* Every tensor the forward pass reads, with the shape the config implies. */
static want_t *expected(const ct_model_config *m, size_t *count)
{
    want_t *w = calloc((size_t)m->n_layer * 16 + 8, sizeof *w);
    if (!w)
        return NULL;
    size_t n = 0;
    int64_t D = m->hidden, V = m->vocab, I = m->intermediate;
    int head = !m->tie_embeddings;
    switch (m->arch) {
    case CT_ARCH_GPT_NEOX:
        want(w, &n, V, D, "gpt_neox.embed_in", 0, ".weight");
        for (int l = 0; l < m->n_layer; l++) {
            want_norm(w, &n, "gpt_neox.layers.%d.input_layernorm", l, D);
            want_norm(w, &n, "gpt_neox.layers.%d.post_attention_layernorm", l, D);
            want_linear(w, &n, "gpt_neox.layers.%d.attention.query_key_value", l, 3 * D, D, 1);
            want_linear(w, &n, "gpt_neox.layers.%d.attention.dense", l, D, D, 1);
            want_linear(w, &n, "gpt_neox.layers.%d.mlp.dense_h_to_4h", l, I, D, 1);
            want_linear(w, &n, "gpt_neox.layers.%d.mlp.dense_4h_to_h", l, D, I, 1);
        }
        want_norm(w, &n, "gpt_neox.final_layer_norm", 0, D);
        if (head)
            want(w, &n, V, D, "embed_out", 0, ".weight");
        break;
    case CT_ARCH_BLOOM:
        want(w, &n, V, D, "transformer.word_embeddings", 0, ".weight");
        want_norm(w, &n, "transformer.word_embeddings_layernorm", 0, D);
        for (int l = 0; l < m->n_layer; l++) {
            want_norm(w, &n, "transformer.h.%d.input_layernorm", l, D);
            want_linear(w, &n, "transformer.h.%d.self_attention.query_key_value", l, 3 * D, D, 1);
            want_linear(w, &n, "transformer.h.%d.self_attention.dense", l, D, D, 1);
            want_norm(w, &n, "transformer.h.%d.post_attention_layernorm", l, D);
            want_linear(w, &n, "transformer.h.%d.mlp.dense_h_to_4h", l, I, D, 1);
            want_linear(w, &n, "transformer.h.%d.mlp.dense_4h_to_h", l, D, I, 1);
        }
        want_norm(w, &n, "transformer.ln_f", 0, D);
        if (head)
            want(w, &n, V, D, "lm_head", 0, ".weight");
        break;
    case CT_ARCH_OLMO:
        want(w, &n, V, D, "model.embed_tokens", 0, ".weight");
        for (int l = 0; l < m->n_layer; l++) {
            want_linear(w, &n, "model.layers.%d.self_attn.q_proj", l, D, D, m->attention_bias);
            want_linear(w, &n, "model.layers.%d.self_attn.k_proj", l, D, D, m->attention_bias);
            want_linear(w, &n, "model.layers.%d.self_attn.v_proj", l, D, D, m->attention_bias);
            want_linear(w, &n, "model.layers.%d.self_attn.o_proj", l, D, D, m->attention_bias);
            want_linear(w, &n, "model.layers.%d.mlp.gate_proj", l, I, D, 0);
            want_linear(w, &n, "model.layers.%d.mlp.up_proj", l, I, D, 0);
            want_linear(w, &n, "model.layers.%d.mlp.down_proj", l, D, I, 0);
        }
        if (head)
            want(w, &n, V, D, "lm_head", 0, ".weight");
        break;
    }
    *count = n;
    return w;
}

static void fmt_shape(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

static int is_float(ct_dtype dt)
{
    return dt == CT_DT_F32 || dt == CT_DT_F16 || dt == CT_DT_BF16 || dt == CT_DT_F64;
}

static int validate(const ct_checkpoint *c)
{
    size_t n;
    want_t *w = expected(&c->cfg, &n);
    if (!w)
        return ct_error_set(CT_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const ck_entry *e = find(c, w[i].name);
        char want_s[64], got_s[128];
        fmt_shape(want_s, sizeof want_s, w[i].ndim, w[i].shape);
        if (!e) {
            rc = ct_error_set(CT_ENOTFOUND, "%s: tensor '%s' %s is missing from the weights",
                              c->dir, w[i].name, want_s);
            break;
        }
        int same = e->v.ndim == w[i].ndim;
        for (int d = 0; same && d < w[i].ndim; d++)
            same = e->v.shape[d] == w[i].shape[d];
        fmt_shape(got_s, sizeof got_s, e->v.ndim, e->v.shape);
        if (!same)
            rc = ct_error_set(CT_EFORMAT,
                              "%s/%s: tensor '%s' has shape %s but %s/config.json "
                              "implies %s",
                              c->dir, e->file, e->raw_name, got_s, c->dir, want_s);
        else if (!is_float(e->v.dtype))
            rc = ct_error_set(CT_EFORMAT, "%s/%s: tensor '%s' has dtype %s, not a float type",
                              c->dir, e->file, e->raw_name, ct_dtype_name(e->v.dtype));
    }
    free(w);
    return rc;
}

/* Each weight_map entry must be in the shard it names. */
static int check_weight_map(const ct_checkpoint *c)
{
    const char *k;
    json_t *v;
    json_object_foreach (c->files.weight_map, k, v) {
        if (is_buffer(k))
            continue;
        char *canon = canonical(c->cfg.arch, k);
        if (!canon)
            return ct_error_set(CT_ENOMEM, "out of memory");
        const ck_entry *e = find(c, canon);
        free(canon);
        if (!e || strcmp(e->raw_name, k) || strcmp(e->file, json_string_value(v)))
            return ct_error_set(CT_ECORRUPT, "%s: tensor '%s' is not in shard '%s'",
                                c->files.index_path, k, json_string_value(v));
    }
    return 0;
}

/* ------------------------------------------------------------ open / close */

void ct_ckpt_close(ct_checkpoint *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].canon);
    free(c->e);
    for (size_t i = 0; i < c->files.n; i++) {
        if (c->st)
            ct_safetensors_close(c->st[i]);
        if (c->tb)
            ct_torchbin_close(c->tb[i]);
    }
    free(c->st);
    free(c->tb);
    ct_ckpt_files_free(&c->files);
    free(c->dir);
    free(c);
}

static int add_entry(ct_checkpoint *c, size_t *cap, const ct_tensor_view *v, const char *file)
{
    if (is_buffer(v->name))
        return 0;
    if (c->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        ck_entry *e = realloc(c->e, nc * sizeof *e);
        if (!e)
            return ct_error_set(CT_ENOMEM, "out of memory");
        c->e = e;
        *cap = nc;
    }
    ck_entry *e = &c->e[c->n];
    if (!(e->canon = canonical(c->cfg.arch, v->name)))
        return ct_error_set(CT_ENOMEM, "out of memory");
    e->v = *v;
    e->v.name = e->canon;
    e->file = file;
    e->raw_name = v->name;
    c->n++;
    return 0;
}

static int load_files(ct_checkpoint *c)
{
    size_t nf = c->files.n, cap = 0;
    if (c->files.pytorch)
        c->tb = calloc(nf, sizeof *c->tb);
    else
        c->st = calloc(nf, sizeof *c->st);
    if (!c->tb && !c->st)
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        int rc;
        ct_tensor_view v;
        if (c->files.pytorch) {
            if ((rc = ct_torchbin_open(c->files.paths[i], &c->tb[i])))
                return rc;
            for (size_t j = 0; j < ct_torchbin_count(c->tb[i]); j++) {
                ct_torchbin_at(c->tb[i], j, &v);
                if ((rc = add_entry(c, &cap, &v, c->files.names[i])))
                    return rc;
            }
        } else {
            if ((rc = ct_safetensors_open(c->files.paths[i], &c->st[i])))
                return rc;
            for (size_t j = 0; j < ct_safetensors_count(c->st[i]); j++) {
                ct_safetensors_at(c->st[i], j, &v);
                if ((rc = add_entry(c, &cap, &v, c->files.names[i])))
                    return rc;
            }
        }
    }
    qsort(c->e, c->n, sizeof *c->e, cmp_entry);
    for (size_t i = 1; i < c->n; i++)
        if (strcmp(c->e[i].canon, c->e[i - 1].canon) == 0)
            return ct_error_set(CT_ECORRUPT,
                                "%s: tensor '%s' is stored twice ('%s' in %s, '%s' in %s)", c->dir,
                                c->e[i].canon, c->e[i - 1].raw_name, c->e[i - 1].file,
                                c->e[i].raw_name, c->e[i].file);
    return 0;
}

int ct_ckpt_open_ex(const char *source, const ct_ckpt_open_opts *opts, ct_checkpoint **out)
{
    *out = NULL;
    ct_checkpoint *c = calloc(1, sizeof *c);
    if (!c)
        return ct_error_set(CT_ENOMEM, "out of memory");
    char path[PATH_MAX], hint[1024];
    int rc = ct_ckpt_resolve(source, &c->dir);
    ct_ckpt_hub_hint(source, hint, sizeof hint);
    if (!rc) {
        snprintf(path, sizeof path, "%s/config.json", c->dir);
        if (!exists(path))
            rc = ct_error_set(CT_ENOTFOUND, "%s: no config.json%s%s", c->dir, hint[0] ? "; " : "",
                              hint);
        else
            rc = ct_ckpt_parse_config(path, &c->cfg);
    }
    if (!rc) {
        rc = ct_ckpt_list_weights(c->dir, opts ? opts->weights : CT_CKPT_WEIGHTS_AUTO, &c->files);
        if (rc == CT_ENOTFOUND && hint[0]) {
            char old[1024];
            snprintf(old, sizeof old, "%s", ct_error_message());
            ct_error_set(rc, "%s (source %s); %s", old, source, hint);
        }
    }
    if (!rc)
        rc = load_files(c);
    if (!rc && c->files.weight_map)
        rc = check_weight_map(c);
    if (!rc)
        rc = validate(c);
    if (rc) {
        ct_ckpt_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

int ct_ckpt_open(const char *source, ct_checkpoint **out)
{
    return ct_ckpt_open_ex(source, NULL, out);
}

const ct_model_config *ct_ckpt_config(const ct_checkpoint *c)
{
    return &c->cfg;
}

const char *ct_ckpt_dir(const ct_checkpoint *c)
{
    return c->dir;
}

int ct_ckpt_tensor(const ct_checkpoint *c, const char *name, ct_tensor_view *out)
{
    const ck_entry *e = find(c, name);
    if (!e && c->cfg.tie_embeddings && strcmp(name, arch_head(c->cfg.arch)) == 0) {
        e = find(c, arch_embed(c->cfg.arch));
        if (e) {
            *out = e->v;
            out->name = arch_head(c->cfg.arch);
            return 0;
        }
    }
    if (!e)
        return ct_error_set(CT_ENOTFOUND, "%s: no tensor '%s'", c->dir, name);
    *out = e->v;
    return 0;
}

int ct_ckpt_tensor_f32(const ct_checkpoint *c, const char *name, float *dst, size_t n_expected)
{
    ct_tensor_view v;
    int rc = ct_ckpt_tensor(c, name, &v);
    if (rc)
        return rc;
    if (v.numel != n_expected)
        return ct_error_set(CT_EINVAL, "%s: tensor '%s' has %zu elements, caller expects %zu",
                            c->dir, name, v.numel, n_expected);
    if (!is_float(v.dtype))
        return ct_error_set(CT_EFORMAT, "%s: tensor '%s' has dtype %s, not a float type", c->dir,
                            name, ct_dtype_name(v.dtype));
    return ct_dtype_to_f32(v.dtype, v.data, v.numel, dst);
}

size_t ct_ckpt_tensor_count(const ct_checkpoint *c)
{
    return c->n;
}

void ct_ckpt_tensor_at(const ct_checkpoint *c, size_t i, ct_tensor_view *out)
{
    *out = c->e[i].v;
}

int ct_ckpt_digest(const ct_checkpoint *c, char hex[CT_SHA256_HEX_LEN + 1])
{
    return ct_ckpt_dir_digest(c->dir, &c->files, hex);
}
