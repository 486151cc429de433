/* Whole checkpoints: config.json of each architecture, every weight format giving
 * bit-identical fp32 tensors under canonical names, config errors, hub-cache
 * resolution and content digests. */
#include "ckpt_testutil.h"
#include "models/checkpoint/checkpoint.h"
#include "models/checkpoint/safetensors.h"
#include "common/io.h"
#include "common/sha256.h"

#include <unistd.h>

static char g_tmp[512];

static const char *fixture(char *buf, size_t n, const char *rel)
{
    char r[512];
    snprintf(r, sizeof r, "tests/fixtures/checkpoints/%s", rel);
    return ct_test_src(buf, n, r);
}

static ct_checkpoint *open_fx(const char *rel, ct_ckpt_weights w)
{
    char p[4096];
    ct_ckpt_open_opts o = CT_CKPT_OPEN_OPTS_INIT;
    o.weights = w;
    ct_checkpoint *c = NULL;
    int rc = ct_ckpt_open_ex(fixture(p, sizeof p, rel), &o, &c);
    ck_assert_msg(rc == 0, "%s: %s", rel, ct_error_message());
    return c;
}

/* Same tensor names, shapes and fp32 values, bit for bit. */
static void assert_same(const ct_checkpoint *a, const ct_checkpoint *b)
{
    ck_assert_uint_eq(ct_ckpt_tensor_count(a), ct_ckpt_tensor_count(b));
    ck_assert_int_eq(memcmp(ct_ckpt_config(a), ct_ckpt_config(b), sizeof(ct_model_config)), 0);
    for (size_t i = 0; i < ct_ckpt_tensor_count(a); i++) {
        ct_tensor_view x, y;
        ct_ckpt_tensor_at(a, i, &x);
        ct_ckpt_tensor_at(b, i, &y);
        ck_assert_str_eq(x.name, y.name);
        ck_assert_int_eq(x.ndim, y.ndim);
        ck_assert_int_eq(memcmp(x.shape, y.shape, sizeof x.shape), 0);
        float *fx = malloc(x.numel * 4 + 4), *fy = malloc(y.numel * 4 + 4);
        ck_assert_int_eq(ct_ckpt_tensor_f32(a, x.name, fx, x.numel), 0);
        ck_assert_int_eq(ct_ckpt_tensor_f32(b, y.name, fy, y.numel), 0);
        ck_assert_msg(memcmp(fx, fy, x.numel * 4) == 0, "%s differs", x.name);
        free(fx);
        free(fy);
    }
}

static void assert_expected(const ct_checkpoint *c, const char *tag)
{
    exp_row *rows;
    size_t n = load_expected(tag, &rows);
    ck_assert_uint_eq(ct_ckpt_tensor_count(c), n);
    for (size_t i = 0; i < n; i++) {
        ct_tensor_view v;
        ck_assert_msg(ct_ckpt_tensor(c, rows[i].tensor, &v) == 0, "%s", ct_error_message());
        ck_assert_str_eq(v.name, rows[i].tensor);
        check_view_against(&v, &rows[i]);
    }
    free(rows);
}

START_TEST(neox_formats_agree)
{
    ct_checkpoint *st = open_fx("neox", CT_CKPT_WEIGHTS_AUTO);
    ct_checkpoint *bin = open_fx("neox", CT_CKPT_WEIGHTS_PYTORCH);
    ct_checkpoint *old = open_fx("neox-old", CT_CKPT_WEIGHTS_AUTO);
    const ct_model_config *m = ct_ckpt_config(st);
    ck_assert_int_eq(m->arch, CT_ARCH_GPT_NEOX);
    ck_assert_int_eq(m->n_layer, 2);
    ck_assert_int_eq(m->n_head, 2);
    ck_assert_int_eq(m->hidden, 16);
    ck_assert_int_eq(m->intermediate, 32);
    ck_assert_int_eq(m->vocab, 64);
    ck_assert_int_eq(m->max_positions, 32);
    ck_assert_int_eq(m->act, CT_ACT_GELU_ERF);
    ck_assert(m->norm_eps == 1e-5f && m->rotary_pct == 0.25f && m->rotary_base == 10000.0f);
    ck_assert_int_eq(m->parallel_residual, 1);
    ck_assert_int_eq(m->tie_embeddings, 0);
    ck_assert_int_eq(m->attention_bias, 1);
    ck_assert(m->clip_qkv == 0.0f);
    ck_assert(m->bos_token_id == 0 && m->eos_token_id == 0 && m->pad_token_id == -1);
    assert_expected(st, "neox");
    assert_same(st, bin);
    assert_same(st, old); /* fp16 file with buffers: the buffers are not parameters */
    ct_tensor_view v;
    ck_assert_int_eq(ct_ckpt_tensor(old, "gpt_neox.layers.0.attention.bias", &v), CT_ENOTFOUND);
    ck_assert_int_eq(ct_ckpt_tensor(old, "gpt_neox.layers.0.attention.rotary_emb.inv_freq", &v),
                     CT_ENOTFOUND);
    ck_assert_int_eq(ct_ckpt_tensor(old, "gpt_neox.embed_in.weight", &v), 0);
    ck_assert_int_eq(v.dtype, CT_DT_F16);
    /* zero-copy: the safetensors view points into the mapped file */
    ck_assert_int_eq(ct_ckpt_tensor(st, "embed_out.weight", &v), 0);
    ck_assert_int_eq(v.dtype, CT_DT_F32);
    float *buf = malloc(64 * 16 * 4);
    ck_assert_int_eq(ct_ckpt_tensor_f32(st, "embed_out.weight", buf, 64 * 16 - 1), CT_EINVAL);
    assert_msg_has("embed_out.weight", "1024 elements", (const char *)NULL);
    free(buf);
    ck_assert_int_eq(ct_ckpt_tensor(st, "gpt_neox.layers.9.attention.dense.weight", &v),
                     CT_ENOTFOUND);
    ct_ckpt_close(st);
    ct_ckpt_close(bin);
    ct_ckpt_close(old);
}
END_TEST

START_TEST(bloom_prefixes_and_tied_head)
{
    ct_checkpoint *st = open_fx("bloom", CT_CKPT_WEIGHTS_AUTO);     /* bf16, prefixed */
    ct_checkpoint *bin = open_fx("bloom", CT_CKPT_WEIGHTS_PYTORCH); /* no prefix */
    const ct_model_config *m = ct_ckpt_config(st);
    ck_assert_int_eq(m->arch, CT_ARCH_BLOOM);
    ck_assert_int_eq(m->hidden, 16); /* from the legacy "n_embed" */
    ck_assert_int_eq(m->n_head, 4);  /* from "num_attention_heads" */
    ck_assert_int_eq(m->n_layer, 2);
    ck_assert_int_eq(m->intermediate, 64);
    ck_assert_int_eq(m->act, CT_ACT_GELU_TANH);
    ck_assert_int_eq(m->tie_embeddings, 1);
    ck_assert_int_eq(m->max_positions, 0);
    ck_assert(m->bos_token_id == 1 && m->eos_token_id == 2 && m->pad_token_id == 3);
    assert_expected(st, "bloom");
    assert_expected(bin, "bloom");
    assert_same(st, bin);
    ct_tensor_view h, e;
    ck_assert_int_eq(ct_ckpt_tensor(bin, "lm_head.weight", &h), 0);
    ck_assert_int_eq(ct_ckpt_tensor(bin, "transformer.word_embeddings.weight", &e), 0);
    ck_assert_ptr_eq(h.data, e.data);
    ck_assert_str_eq(h.name, "lm_head.weight");
    ck_assert_int_eq(ct_ckpt_tensor(st, "transformer.h.1.self_attention.query_key_value.bias", &h),
                     0);
    ck_assert_int_eq(h.dtype, CT_DT_BF16);
    ck_assert_int_eq(h.shape[0], 48);
    ct_ckpt_close(st);
    ct_ckpt_close(bin);
}
END_TEST

START_TEST(olmo_sharded_and_tied)
{
    ct_checkpoint *st = open_fx("olmo", CT_CKPT_WEIGHTS_AUTO);
    ct_checkpoint *bin = open_fx("olmo", CT_CKPT_WEIGHTS_PYTORCH);
    const ct_model_config *m = ct_ckpt_config(st);
    ck_assert_int_eq(m->arch, CT_ARCH_OLMO);
    ck_assert_int_eq(m->act, CT_ACT_SILU);
    ck_assert_int_eq(m->intermediate, 24);
    ck_assert_int_eq(m->attention_bias, 0);
    ck_assert_int_eq(m->tie_embeddings, 0);
    ck_assert_int_eq(m->max_positions, 4096);
    ck_assert(m->clip_qkv == 0.0f && m->rotary_pct == 1.0f && m->rotary_base == 10000.0f);
    ck_assert(m->eos_token_id == 50279 && m->pad_token_id == 1 && m->bos_token_id == -1);
    assert_expected(st, "olmo");
    assert_same(st, bin);

    ct_checkpoint *t = open_fx("olmo-tied", CT_CKPT_WEIGHTS_AUTO);
    m = ct_ckpt_config(t);
    ck_assert_int_eq(m->tie_embeddings, 1);
    ck_assert(m->clip_qkv == 8.0f);
    assert_expected(t, "olmo-tied");
    ct_tensor_view h, e;
    ck_assert_int_eq(ct_ckpt_tensor(t, "lm_head.weight", &h), 0);
    ck_assert_int_eq(ct_ckpt_tensor(t, "model.embed_tokens.weight", &e), 0);
    ck_assert_ptr_eq(h.data, e.data);
    ck_assert_int_eq(ct_ckpt_tensor(st, "lm_head.weight", &h), 0);
    ck_assert_ptr_ne(h.data, NULL);
    ct_ckpt_close(st);
    ct_ckpt_close(bin);
    ct_ckpt_close(t);
}
END_TEST

/* A scratch checkpoint: `config` as config.json beside a copy of fixture `weights`. */
static void scratch(const char *dir, const char *config, const char *weights_rel)
{
    char p[4096], q[4096];
    ck_assert_int_eq(ct_mkdirs(dir, 0755), 0);
    snprintf(q, sizeof q, "%s/config.json", dir);
    spit_str(q, config);
    if (weights_rel) {
        const char *base = strrchr(weights_rel, '/') + 1;
        snprintf(q, sizeof q, "%s/%s", dir, base);
        copy_file(fixture(p, sizeof p, weights_rel), q);
    }
}

static void expect_config_error(const char *config, int code, const char *n1, const char *n2)
{
    char dir[1024], path[1100];
    static int k;
    snprintf(dir, sizeof dir, "%s/cfg%d", g_tmp, k++);
    scratch(dir, config, "neox/model.safetensors");
    snprintf(path, sizeof path, "%s/config.json", dir);
    ct_checkpoint *c = (ct_checkpoint *)1;
    int rc = ct_ckpt_open(dir, &c);
    ck_assert_msg(rc == code, "rc %d (%s) for %s", rc, ct_error_message(), config);
    ck_assert_ptr_null(c);
    assert_msg_has(path, n1, n2, (const char *)NULL);
}

START_TEST(config_errors)
{
    char p[4096];
    /* the real GPT-2 config of the copied transformers checkpoint */
    size_t n;
    unsigned char *gpt2 = slurp(fixture(p, sizeof p, "gpt2-fake/config.json"), &n);
    expect_config_error((const char *)gpt2, CT_EFORMAT, "unsupported architecture",
                        "\"GPT2LMHeadModel\"");
    free(gpt2);
    const char *neox =
        "{\"architectures\": [\"GPTNeoXForCausalLM\"], \"model_type\": \"gpt_neox\", "
        "\"hidden_size\": 16, \"num_attention_heads\": 2, \"num_hidden_layers\": 2, "
        "\"intermediate_size\": 32, \"vocab_size\": 64, \"max_position_embeddings\": 32";
    char cfg[2048];
#define WITH(extra) (snprintf(cfg, sizeof cfg, "%s%s}", neox, extra), cfg)
    expect_config_error(WITH(", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}"),
                        CT_EFORMAT, "\"rope_scaling\"", "{\"type\":\"linear\",\"factor\":2.0}");
    expect_config_error(WITH(", \"hidden_act\": \"relu2\""), CT_EFORMAT, "\"hidden_act\"",
                        "\"relu2\" is not supported");
    expect_config_error(WITH(", \"pos_emb\": \"alibi\""), CT_EFORMAT, "\"pos_emb\"", "\"alibi\"");
    expect_config_error(WITH(", \"attention_bias\": false"), CT_EFORMAT, "\"attention_bias\"",
                        "false");
    expect_config_error(WITH(", \"rotary_pct\": 0.125"), CT_EFORMAT, "1 rotary dimensions", "odd");
    expect_config_error(WITH(", \"num_attention_heads\": 3"), CT_EFORMAT, "not a multiple",
                        "3 heads");
    expect_config_error("{\"architectures\": [\"GPTNeoXForCausalLM\"], \"hidden_size\": \"16\"}",
                        CT_EFORMAT, "\"hidden_size\"", "must be an integer");
    expect_config_error("{\"architectures\": [\"GPTNeoXForCausalLM\"], \"model_type\": \"bloom\"}",
                        CT_EFORMAT, "\"model_type\" = \"bloom\"", "contradicts");
    expect_config_error("{\"architectures\": [\"GPTNeoXForCausalLM\"],", CT_EFORMAT, "invalid JSON",
                        "line");
    expect_config_error("{\"architectures\": [\"OLMoForCausalLM\"], \"model_type\": \"hf_olmo\"}",
                        CT_EFORMAT, "\"OLMoForCausalLM\"", "-hf");
    expect_config_error("{\"architectures\": [\"BloomForCausalLM\"], "
                        "\"apply_residual_connection_post_layernorm\": true}",
                        CT_EFORMAT, "\"apply_residual_connection_post_layernorm\" = true", NULL);
    expect_config_error("{\"architectures\": [\"OlmoForCausalLM\"], \"num_attention_heads\": 4, "
                        "\"num_key_value_heads\": 2, \"hidden_size\": 16}",
                        CT_EFORMAT, "\"num_key_value_heads\" = 2", "grouped-query");
    expect_config_error("{\"architectures\": [\"OlmoForCausalLM\"], \"rope_scaling\": "
                        "{\"type\": \"dynamic\", \"factor\": 4}}",
                        CT_EFORMAT, "\"rope_scaling\"", "dynamic");
    expect_config_error("{\"architectures\": [\"OlmoForCausalLM\"], \"hidden_act\": \"gelu\"}",
                        CT_EFORMAT, "\"hidden_act\" = \"gelu\"", "SwiGLU");
    expect_config_error("{\"vocab_size\": 10}", CT_EFORMAT, "neither \"architectures\"", NULL);
    /* a correct config whose sizes disagree with the weights */
    expect_config_error(WITH(", \"intermediate_size\": 48"), CT_EFORMAT,
                        "'gpt_neox.layers.0.mlp.dense_h_to_4h.weight' has shape [32, 16]",
                        "implies [48, 16]");
#undef WITH
}
END_TEST

START_TEST(weights_errors)
{
    char dir[1024], p[4096], q[1200];
    /* BLOOM weights under a GPT-NeoX config: the first expected tensor is missing */
    snprintf(dir, sizeof dir, "%s/mismatch", g_tmp);
    size_t n;
    unsigned char *cfg = slurp(fixture(p, sizeof p, "neox/config.json"), &n);
    scratch(dir, (const char *)cfg, "bloom/model.safetensors");
    free(cfg);
    ct_checkpoint *c;
    ck_assert_int_eq(ct_ckpt_open(dir, &c), CT_ENOTFOUND);
    assert_msg_has(dir, "'gpt_neox.embed_in.weight' [64, 16] is missing", (const char *)NULL);

    /* no weights at all */
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    unlink(q);
    ck_assert_int_eq(ct_ckpt_open(dir, &c), CT_ENOTFOUND);
    assert_msg_has(dir, "no weights found", (const char *)NULL);

    /* a shard index that maps a tensor to the wrong shard */
    snprintf(dir, sizeof dir, "%s/badindex", g_tmp);
    ck_assert_int_eq(ct_mkdirs(dir, 0755), 0);
    const char *files[] = {"config.json", "model-00001-of-00002.safetensors",
                           "model-00002-of-00002.safetensors"};
    for (int i = 0; i < 3; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "olmo/%s", files[i]);
        snprintf(q, sizeof q, "%s/%s", dir, files[i]);
        copy_file(fixture(p, sizeof p, rel), q);
    }
    unsigned char *idx = slurp(fixture(p, sizeof p, "olmo/model.safetensors.index.json"), &n);
    char *s = strstr((char *)idx, "\"lm_head.weight\": \"model-00002");
    ck_assert_ptr_nonnull(s);
    s[strlen("\"lm_head.weight\": \"model-0000")] = '1';
    snprintf(q, sizeof q, "%s/model.safetensors.index.json", dir);
    spit(q, idx, n);
    free(idx);
    ck_assert_int_eq(ct_ckpt_open(dir, &c), CT_ECORRUPT);
    assert_msg_has(q, "'lm_head.weight' is not in shard 'model-00001-of-00002.safetensors'", (const char *)NULL);

    /* an index naming a shard outside the directory */
    spit_str(q, "{\"weight_map\": {\"model.embed_tokens.weight\": \"../x.safetensors\"}}");
    ck_assert_int_eq(ct_ckpt_open(dir, &c), CT_ECORRUPT);
    assert_msg_has(q, "invalid shard", (const char *)NULL);

    ck_assert_int_eq(ct_ckpt_open("/nonexistent/checkpoint", &c), CT_ENOTFOUND);
    assert_msg_has("/nonexistent/checkpoint", "not a directory", (const char *)NULL);
}
END_TEST

/* ------------------------------------------------------------ hub cache */

static void sha_hex_of(const char *path, char hex[65])
{
    uint8_t d[32];
    ck_assert_int_eq(ct_sha256_file(path, d), 0);
    ct_hex_encode(d, 32, hex);
}

/* models--ORG--NAME/{blobs,refs,snapshots}: each file of fixture `fx` stored as a blob
 * (named by its SHA-256, or by `fake_blob` when given, or by a 40-hex git-style name
 * for small files), linked from snapshots/<commit>/. */
static void make_hub_repo(const char *hub, const char *org, const char *name, const char *fx,
                          const char *const *files, const char *commit, const char *fake_blob)
{
    char repo[1024], p[4096], q[2048], blob[2200], hex[65];
    snprintf(repo, sizeof repo, "%s/models--%s--%s", hub, org, name);
    snprintf(q, sizeof q, "%s/blobs", repo);
    ck_assert_int_eq(ct_mkdirs(q, 0755), 0);
    snprintf(q, sizeof q, "%s/refs", repo);
    ck_assert_int_eq(ct_mkdirs(q, 0755), 0);
    snprintf(q, sizeof q, "%s/snapshots/%s", repo, commit);
    ck_assert_int_eq(ct_mkdirs(q, 0755), 0);
    for (int i = 0; files[i]; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s", fx, files[i]);
        fixture(p, sizeof p, rel);
        int lfs = strstr(files[i], ".json") == NULL;
        if (lfs && fake_blob)
            snprintf(hex, sizeof hex, "%s", fake_blob);
        else if (lfs)
            sha_hex_of(p, hex);
        else
            snprintf(hex, sizeof hex, "%040d", i + 1); /* git blob ids are 40 hex */
        snprintf(blob, sizeof blob, "%s/blobs/%s", repo, hex);
        copy_file(p, blob);
        snprintf(q, sizeof q, "%s/snapshots/%s/%s", repo, commit, files[i]);
        char target[128];
        snprintf(target, sizeof target, "../../blobs/%s", hex);
        ck_assert_int_eq(symlink(target, q), 0);
    }
    snprintf(q, sizeof q, "%s/refs/main", repo);
    char line[64];
    snprintf(line, sizeof line, "%s\n", commit);
    spit_str(q, line);
}

START_TEST(hub_cache_resolution_and_digest)
{
    char hub[1024];
    snprintf(hub, sizeof hub, "%s/hub", g_tmp);
    const char *files[] = {"config.json", "model.safetensors", NULL};
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    make_hub_repo(hub, "Org", "tiny-neox", "neox", files, commit, NULL);
    make_hub_repo(hub, "Org", "fake-blob", "neox", files, commit,
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    setenv("HF_HUB_CACHE", hub, 1);

    ct_checkpoint *c;
    const char *sources[] = {"hf:Org/tiny-neox@main", "hf:Org/tiny-neox", NULL};
    char via_main[65] = "", hex[65];
    for (int i = 0; sources[i]; i++) {
        ck_assert_msg(ct_ckpt_open(sources[i], &c) == 0, "%s", ct_error_message());
        ck_assert_ptr_nonnull(strstr(ct_ckpt_dir(c), "/models--Org--tiny-neox/snapshots/"));
        ck_assert_ptr_nonnull(strstr(ct_ckpt_dir(c), commit));
        assert_expected(c, "neox");
        ck_assert_int_eq(ct_ckpt_digest(c, hex), 0);
        if (i == 0)
            memcpy(via_main, hex, 65);
        ck_assert_str_eq(hex, via_main);
        ct_ckpt_close(c);
    }
    char src[256];
    snprintf(src, sizeof src, "hf:Org/tiny-neox@%s", commit);
    ck_assert_msg(ct_ckpt_open(src, &c) == 0, "%s", ct_error_message());
    ct_ckpt_close(c);
    ck_assert_int_eq(ct_ckpt_digest_source(src, NULL, hex), 0);
    ck_assert_str_eq(hex, via_main);

    /* the blob names are real SHA-256s: the digest equals that of a plain copy, which
     * is hashed; with a made-up blob name the name is trusted, so the digest differs */
    char local[1024], p[4096], q[1200], local_hex[65];
    snprintf(local, sizeof local, "%s/local-neox", g_tmp);
    ck_assert_int_eq(ct_mkdirs(local, 0755), 0);
    for (int i = 0; files[i]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "neox/%s", files[i]);
        snprintf(q, sizeof q, "%s/%s", local, files[i]);
        copy_file(fixture(p, sizeof p, rel), q);
    }
    ck_assert_int_eq(ct_ckpt_digest_source(local, NULL, local_hex), 0);
    ck_assert_str_eq(local_hex, via_main);
    ck_assert_int_eq(ct_ckpt_digest_source("hf:Org/fake-blob@main", NULL, hex), 0);
    ck_assert_str_ne(hex, via_main);

    /* missing revision / repository: the message carries the download command */
    ck_assert_int_eq(ct_ckpt_open("hf:Org/tiny-neox@step1000", &c), CT_ENOTFOUND);
    assert_msg_has(
        "hf:Org/tiny-neox@step1000", hub,
        "huggingface-cli download Org/tiny-neox --revision step1000 --include \"*.json\" "
        "\"*.safetensors\"",
        (const char *)NULL);
    ck_assert_int_eq(ct_ckpt_open("hf:EleutherAI/pythia-1b@step512", &c), CT_ENOTFOUND);
    assert_msg_has("huggingface-cli download EleutherAI/pythia-1b --revision step512", (const char *)NULL);
    ck_assert_int_eq(ct_ckpt_open("hf:Org/../../etc@main", &c), CT_EINVAL);
    ck_assert_int_eq(ct_ckpt_open("hf:noslash@main", &c), CT_EINVAL);
    ck_assert_int_eq(ct_ckpt_open("hf:Org/tiny-neox@../../x", &c), CT_EINVAL);

    /* a snapshot holding only the JSON files: the weights error carries the command */
    const char *json_only[] = {"config.json", NULL};
    make_hub_repo(hub, "Org", "json-only", "neox", json_only, commit, NULL);
    ck_assert_int_eq(ct_ckpt_open("hf:Org/json-only@main", &c), CT_ENOTFOUND);
    assert_msg_has("no weights found",
                   "huggingface-cli download Org/json-only --revision main --include", (const char *)NULL);

    /* HF_HOME/hub when HF_HUB_CACHE is unset */
    unsetenv("HF_HUB_CACHE");
    setenv("HF_HOME", g_tmp, 1);
    ck_assert_msg(ct_ckpt_open("hf:Org/tiny-neox@main", &c) == 0, "%s", ct_error_message());
    ct_ckpt_close(c);
    unsetenv("HF_HOME");
}
END_TEST

START_TEST(digest_tracks_content)
{
    char a[65], b[65], c2[65], d[65];
    char p[4096];
    ct_ckpt_open_opts st = CT_CKPT_OPEN_OPTS_INIT, pt = CT_CKPT_OPEN_OPTS_INIT;
    st.weights = CT_CKPT_WEIGHTS_SAFETENSORS;
    pt.weights = CT_CKPT_WEIGHTS_PYTORCH;
    fixture(p, sizeof p, "neox");
    ck_assert_int_eq(ct_ckpt_digest_source(p, &st, a), 0);
    ck_assert_int_eq(ct_ckpt_digest_source(p, &pt, b), 0);
    ck_assert_str_ne(a, b);
    ct_checkpoint *c = open_fx("neox", CT_CKPT_WEIGHTS_SAFETENSORS);
    ck_assert_int_eq(ct_ckpt_digest(c, c2), 0);
    ck_assert_str_eq(a, c2);
    ct_ckpt_close(c);

    /* adding a tokenizer.json, or changing config.json, changes the identity */
    char dir[1024], q[1200];
    snprintf(dir, sizeof dir, "%s/dig", g_tmp);
    size_t n;
    unsigned char *cfg = slurp(fixture(p, sizeof p, "neox/config.json"), &n);
    scratch(dir, (const char *)cfg, "neox/model.safetensors");
    ck_assert_int_eq(ct_ckpt_digest_source(dir, NULL, d), 0);
    ck_assert_str_eq(d, a);
    snprintf(q, sizeof q, "%s/tokenizer.json", dir);
    spit_str(q, "{}");
    ck_assert_int_eq(ct_ckpt_digest_source(dir, NULL, d), 0);
    ck_assert_str_ne(d, a);
    unlink(q);
    cfg[n - 2] = ' '; /* whitespace-only edit: still a different file */
    snprintf(q, sizeof q, "%s/config.json", dir);
    spit(q, cfg, n);
    ck_assert_int_eq(ct_ckpt_digest_source(dir, NULL, d), 0);
    ck_assert_str_ne(d, a);
    free(cfg);

    /* sharded: independent of the index's ordering, one line per shard */
    fixture(p, sizeof p, "olmo");
    ck_assert_int_eq(ct_ckpt_digest_source(p, &st, a), 0);
    ck_assert_int_eq(ct_ckpt_digest_source(p, &pt, b), 0);
    ck_assert_str_ne(a, b);
}
END_TEST

int main(void)
{
    make_run_tmpdir(g_tmp, sizeof g_tmp, "ckpt");
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, neox_formats_agree);
    tcase_add_test(tc, bloom_prefixes_and_tied_head);
    tcase_add_test(tc, olmo_sharded_and_tied);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, weights_errors);
    tcase_add_test(tc, hub_cache_resolution_and_digest);
    tcase_add_test(tc, digest_tracks_content);
    suite_add_tcase(s, tc);
    int rc = ct_test_run(s);
    remove_run_tmpdir(g_tmp);
    return rc;
}
