/* Loading good recipes: defaults, canonical values, includes, overrides, locations,
 * embedded recipes, and the README staying in step with the schema. */
#include "common/error.h"
#include "common/io.h"
#include "pipeline/recipe/recipe.h"
#include "pipeline/recipe/schema.h"
#include "tests/support/testutil.h"

#include <math.h>

#define MIN_RECIPE                                                                           \
    "name: t\n"                                                                              \
    "model:\n"                                                                               \
    "  family: gpt-neox\n"                                                                   \
    "  checkpoints:\n"                                                                       \
    "    - {name: a, source: hf:o/m@r1, tokens: 1M}\n"                                       \
    "    - {name: b, source: hf:o/m@r2, tokens: 2M}\n"                                       \
    "layer: 1\n"                                                                             \
    "corpus:\n"                                                                              \
    "  files: [x.txt]\n"                                                                     \
    "tuples: [[a, b]]\n"

static ct_recipe *load_str(const char *yaml, const char *const *sets, size_t n)
{
    ct_recipe_options o = CT_RECIPE_OPTIONS_INIT;
    o.sets = sets;
    o.n_sets = n;
    ct_recipe *r = NULL;
    int rc = ct_recipe_load_string("t.yaml", yaml, &o, &r);
    ck_assert_msg(rc == 0, "load failed: %s", ct_error_message());
    return r;
}

static ct_recipe *load_fixture(const char *rel, const char *const *sets, size_t n)
{
    char path[PATH_MAX];
    ct_test_src(path, sizeof path, rel);
    ct_recipe_options o = CT_RECIPE_OPTIONS_INIT;
    o.sets = sets;
    o.n_sets = n;
    ct_recipe *r = NULL;
    int rc = ct_recipe_load(path, &o, &r);
    ck_assert_msg(rc == 0, "%s: %s", rel, ct_error_message());
    return r;
}

static json_int_t get_int(const ct_recipe *r, const char *path)
{
    json_t *v = ct_recipe_get(r, path);
    ck_assert_msg(json_is_integer(v), "%s is not an integer", path);
    return json_integer_value(v);
}

static double get_real(const ct_recipe *r, const char *path)
{
    json_t *v = ct_recipe_get(r, path);
    ck_assert_msg(json_is_real(v), "%s is not a real", path);
    return json_real_value(v);
}

static const char *get_str(const ct_recipe *r, const char *path)
{
    json_t *v = ct_recipe_get(r, path);
    ck_assert_msg(json_is_string(v), "%s is not a string", path);
    return json_string_value(v);
}

static void assert_loc(const ct_recipe *r, const char *path, const char *file_suffix, int line, int col)
{
    const char *file;
    int l, c;
    ck_assert_msg(ct_recipe_location(r, path, &file, &l, &c) == 0, "%s: %s", path, ct_error_message());
    size_t n = strlen(file), m = strlen(file_suffix);
    ck_assert_msg(n >= m && strcmp(file + n - m, file_suffix) == 0, "%s: file %s, expected ...%s", path,
                  file, file_suffix);
    ck_assert_msg(l == line && c == col, "%s: at %d:%d, expected %d:%d", path, l, c, line, col);
}

/* The tree holds every schema field with its JSON type, and nothing else. */
static void check_complete(const ct_sfield *f, const json_t *v, const char *path)
{
    switch (f->type) {
    case CT_SF_STRING:
    case CT_SF_ENUM: ck_assert_msg(json_is_string(v), "%s: not a string", path); break;
    case CT_SF_INT:
    case CT_SF_SIZE: ck_assert_msg(json_is_integer(v), "%s: not an integer", path); break;
    case CT_SF_NUMBER: ck_assert_msg(json_is_real(v), "%s: not a real", path); break;
    case CT_SF_BOOL: ck_assert_msg(json_is_boolean(v), "%s: not a boolean", path); break;
    case CT_SF_LIST: {
        ck_assert_msg(json_is_array(v), "%s: not an array", path);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) check_complete(f->elem, e, path);
        break;
    }
    case CT_SF_DICT: {
        ck_assert_msg(json_is_object(v), "%s: not an object", path);
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) check_complete(f->elem, e, k);
        break;
    }
    default: {
        ck_assert_msg(json_is_object(v), "%s: not an object", path);
        size_t n = 0;
        for (const ct_sfield *s = f->fields; s->name; s++) {
            json_t *e = json_object_get(v, s->name);
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", s->name);
            if (!e) {
                int toy = json_object_get(v, "toy") != NULL && (s->flags & CT_SF_NOT_IN_TOY);
                ck_assert_msg((s->flags & CT_SF_OPTIONAL) || toy, "%s: missing from the tree", sub);
                continue;
            }
            n++;
            check_complete(s, e, sub);
        }
        ck_assert_msg(json_object_size(v) == n, "%s: has fields outside the schema", path);
    }
    }
}

START_TEST(schema_is_consistent)
{
    /* Every field is exactly one of: required, defaulted, optional section. */
    const ct_sfield *stack[64];
    int sp = 0;
    stack[sp++] = &ct_recipe_schema;
    while (sp) {
        const ct_sfield *f = stack[--sp];
        for (const ct_sfield *s = f->fields; s->name; s++) {
            int kinds = !!(s->flags & CT_SF_REQUIRED) + !!s->def + !!(s->flags & CT_SF_OPTIONAL);
            ck_assert_msg(kinds == 1, "%s: required/default/optional: %d", s->name, kinds);
            ck_assert_msg(s->doc && *s->doc, "%s: no doc", s->name);
            if (s->type == CT_SF_MAP) {
                ck_assert_int_lt(sp, 64);
                stack[sp++] = s;
            }
        }
    }
}
END_TEST

START_TEST(defaults_filled)
{
    ct_recipe *r = load_str(MIN_RECIPE, NULL, 0);
    ck_assert_str_eq(ct_recipe_name(r), "t");
    ck_assert_str_eq(ct_recipe_path(r), "t.yaml");
    ck_assert_str_eq(ct_recipe_text(r), MIN_RECIPE);
    check_complete(&ct_recipe_schema, ct_recipe_root(r), "");
    /* METHOD.md's defaults */
    ck_assert(get_real(r, "crosscoder.lr") == 5e-5);
    ck_assert(get_real(r, "crosscoder.l1_coeff") == 2.0);
    ck_assert(get_real(r, "crosscoder.l1_warmup") == 0.05);
    ck_assert(get_real(r, "crosscoder.lr_decay_start") == 0.8);
    ck_assert(get_real(r, "crosscoder.dec_init_norm") == 0.08);
    ck_assert(get_real(r, "crosscoder.eps") == 1e-8);
    ck_assert(get_real(r, "crosscoder.topk.aux_coeff") == 1.0 / 32);
    ck_assert_int_eq(get_int(r, "crosscoder.tokens"), 400000000);
    ck_assert_int_eq(get_int(r, "crosscoder.topk.dead_tokens"), 10000000);
    ck_assert_int_eq(get_int(r, "crosscoder.dict_size"), 16384);
    ck_assert_int_eq(get_int(r, "crosscoder.batch_size"), 4096);
    ck_assert_str_eq(get_str(r, "crosscoder.type"), "l1");
    json_t *seeds = json_pack("[iii]", 124, 153, 6582);
    ck_assert(json_equal(ct_recipe_get(r, "crosscoder.seeds"), seeds));
    json_decref(seeds);
    ck_assert_int_eq(get_int(r, "corpus.seq_len"), 1024);
    ck_assert_str_eq(get_str(r, "corpus.format"), "text");
    ck_assert_int_eq(json_object_size(ct_recipe_get(r, "corpus.languages")), 0);
    ck_assert_str_eq(get_str(r, "model.tokenizer"), "");
    ck_assert_str_eq(get_str(r, "description"), "");
    ck_assert_int_eq(get_int(r, "relie.ig_steps"), 10);
    ck_assert(get_real(r, "relie.threshold") == 0.1);
    ck_assert_int_eq(get_int(r, "annotate.seed"), 42);
    ck_assert_int_eq(json_array_size(ct_recipe_get(r, "tasks")), 0);
    ck_assert_ptr_null(ct_recipe_get(r, "pretrain"));
    ck_assert_ptr_null(ct_recipe_get(r, "toy"));
    ck_assert_int_eq(get_int(r, "model.checkpoints.1.tokens"), 2000000);
    /* locations */
    assert_loc(r, "crosscoder.lr", "<default>", 0, 0);
    assert_loc(r, "crosscoder.seeds.2", "<default>", 0, 0);
    assert_loc(r, "layer", "t.yaml", 7, 8);
    assert_loc(r, "model", "t.yaml", 3, 3);
    assert_loc(r, "model.checkpoints.1", "t.yaml", 6, 7);
    assert_loc(r, "model.checkpoints.1.tokens", "t.yaml", 6, 44);
    assert_loc(r, "tuples.0.1", "t.yaml", 10, 14);
    assert_loc(r, "", "t.yaml", 1, 1);
    const char *file;
    int l, c;
    ck_assert_int_eq(ct_recipe_location(r, "crosscoder.nope", &file, &l, &c), CT_ENOTFOUND);
    ct_recipe_free(r);
}
END_TEST

/* Toy recipes drive the pipeline's own tests without a model or corpus. */
START_TEST(toy_recipe)
{
    ct_recipe *r = load_str("name: toy-test\ntoy:\n  inputs: [alpha, beta, gamma]\n  rounds: 2\n", NULL, 0);
    check_complete(&ct_recipe_schema, ct_recipe_root(r), "");
    ck_assert_ptr_null(ct_recipe_get(r, "model"));
    ck_assert_ptr_null(ct_recipe_get(r, "tuples"));
    ck_assert_str_eq(get_str(r, "toy.transform"), "upper");
    ck_assert_int_eq(get_int(r, "toy.rounds"), 2);
    ck_assert_int_eq(get_int(r, "toy.sleep_ms"), 0);
    ck_assert_str_eq(get_str(r, "toy.fail_at"), "");
    ck_assert_str_eq(get_str(r, "toy.inputs.2"), "gamma");
    ck_assert(get_real(r, "crosscoder.lr") == 5e-5); /* the other sections still get defaults */
    ct_recipe_free(r);
    /* what is written is still checked */
    ck_assert_int_eq(ct_recipe_load_string("toy.yaml", "name: x\ntoy: {}\nlayer: -1\n", NULL, &r), CT_EINVAL);
    ck_assert_str_eq(ct_error_message(), "toy.yaml:3:8: layer: expected an integer >= 0, got integer -1");
}
END_TEST

START_TEST(optional_sections_filled)
{
    ct_recipe *r = load_str(MIN_RECIPE
                            "pretrain:\n  model: {hidden: 64, layers: 2, heads: 4, ctx: 128}\n"
                            "  batch_sequences: 8\n  steps: 200\n  save_steps: [100, 200]\n"
                            "toy: {inputs: [a, b]}\n", NULL, 0);
    check_complete(&ct_recipe_schema, ct_recipe_root(r), "");
    ck_assert_int_eq(get_int(r, "pretrain.tokenizer.vocab_size"), 4096);
    ck_assert(get_real(r, "pretrain.model.rotary_pct") == 0.25);
    ck_assert(json_is_true(ct_recipe_get(r, "pretrain.model.parallel_residual")));
    ck_assert(get_real(r, "pretrain.min_lr") == 1e-4);
    ck_assert_str_eq(get_str(r, "toy.transform"), "upper");
    ct_recipe_free(r);
}
END_TEST

static char *dump(const ct_recipe *r)
{
    return json_dumps(ct_recipe_root(r), JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17));
}

static void assert_same(const ct_recipe *a, const ct_recipe *b, int same)
{
    char *da = dump(a), *db = dump(b);
    ck_assert_msg(json_equal(ct_recipe_root(a), ct_recipe_root(b)) == same, "%s\n%s", da, db);
    ck_assert_int_eq(strcmp(da, db) == 0, same);
    free(da);
    free(db);
}

START_TEST(canonical_values)
{
    /* order, comments, whitespace, flow vs block, number and size spellings */
    ct_recipe *a = load_str(MIN_RECIPE "crosscoder: {lr: 1e-4, l1_coeff: 2, tokens: 400M}\n", NULL, 0);
    ct_recipe *b = load_str("# the same recipe\n"
                            "tuples:\n  - - a\n    - b\n"
                            "crosscoder:\n"
                            "    tokens: 400_000_000   # tokens\n"
                            "    l1_coeff: 2.0\n"
                            "    lr: 0.0001\n"
                            "corpus: {files: [\"x.txt\"]}\n"
                            "layer:    1\n"
                            "model:\n"
                            "  checkpoints:\n"
                            "  - source: 'hf:o/m@r1'\n    tokens: 1_000_000\n    name: a\n"
                            "  - {tokens: 2e6, name: b, source: hf:o/m@r2}\n"
                            "  family: \"gpt-neox\"\n"
                            "name: t\n", NULL, 0);
    ct_recipe *c = load_str(MIN_RECIPE "crosscoder:\n  lr: 1.0e-04\n  l1_coeff: 20e-1\n  tokens: 4e8\n", NULL, 0);
    ct_recipe *d = load_str(MIN_RECIPE "crosscoder: {lr: 1e-4, l1_coeff: 2, tokens: 0.4B}\n", NULL, 0);
    ct_recipe *e = load_str(MIN_RECIPE "crosscoder: {lr: 1.1e-4, l1_coeff: 2, tokens: 400M}\n", NULL, 0);
    ct_recipe *f = load_str(MIN_RECIPE "crosscoder: {lr: 1e-4, l1_coeff: 2, tokens: 400M}\n", NULL, 0);
    ck_assert(json_is_real(ct_recipe_get(a, "crosscoder.l1_coeff")));
    ck_assert(get_real(a, "crosscoder.lr") == 1e-4);
    assert_same(a, b, 1);
    assert_same(a, c, 1);
    assert_same(a, d, 1);
    assert_same(a, e, 0);
    assert_same(a, f, 1); /* same text, loaded twice: identical bytes */
    ct_recipe_free(a);
    ct_recipe_free(b);
    ct_recipe_free(c);
    ct_recipe_free(d);
    ct_recipe_free(e);
    ct_recipe_free(f);
}
END_TEST

static const struct {
    const char *text;
    long long value; /* -1: rejected */
} sizes[] = {
    {"400M", 400000000LL}, {"400_000_000", 400000000LL}, {"4e8", 400000000LL},
    {"'4e8'", 400000000LL}, {"1.5K", 1500}, {"1.5k", 1500}, {"286B", 286000000000LL},
    {"286G", 286000000000LL}, {"2T", 2000000000000LL}, {"0.05M", 50000}, {"1e-3M", 1000},
    {"10.0", 10}, {"0", 0}, {"+7", 7}, {"9223372036854775807", 9223372036854775807LL},
    {"1.5", -1}, {"-1", -1}, {"1e-3", -1}, {"12X", -1}, {"1.2.3", -1}, {"1e30", -1},
    {"9223372036854775808", -1}, {"M", -1}, {"4MM", -1}, {"1__0", -1}, {"_1", -1},
    {"true", -1}, {"[1]", -1},
};

START_TEST(size_spellings)
{
    char set[64];
    snprintf(set, sizeof set, "crosscoder.tokens=%s", sizes[_i].text);
    const char *sets[] = {set};
    ct_recipe_options o = {sets, 1};
    ct_recipe *r;
    int rc = ct_recipe_load_string("t.yaml", MIN_RECIPE, &o, &r);
    if (sizes[_i].value < 0) {
        ck_assert_msg(rc == CT_EINVAL, "%s accepted", sizes[_i].text);
        ck_assert_msg(strstr(ct_error_message(), "crosscoder.tokens: expected a token count") != NULL,
                      "%s: %s", sizes[_i].text, ct_error_message());
        return;
    }
    ck_assert_msg(rc == 0, "%s: %s", sizes[_i].text, ct_error_message());
    ck_assert_msg(get_int(r, "crosscoder.tokens") == sizes[_i].value, "%s -> %lld", sizes[_i].text,
                  (long long)get_int(r, "crosscoder.tokens"));
    ct_recipe_free(r);
}
END_TEST

START_TEST(number_spellings)
{
    /* Every spelling of 1e-4 is the same double; integers take digit groups. */
    const char *spellings[] = {"1e-4", "0.0001", "1.0e-04", "+1E-4", "10e-5", "0.000_1", "'1e-4'"};
    for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++) {
        char set[64];
        snprintf(set, sizeof set, "crosscoder.lr=%s", spellings[i]);
        const char *sets[] = {set, "crosscoder.dict_size=16_384"};
        ct_recipe_options o = {sets, 2};
        ct_recipe *r;
        int rc = ct_recipe_load_string("t.yaml", MIN_RECIPE, &o, &r);
        if (spellings[i][0] == '\'') { /* quoted: a string, not a number */
            ck_assert_int_eq(rc, CT_EINVAL);
            ck_assert_str_eq(ct_error_message(),
                             "<command line>:1:15: crosscoder.lr: expected a number, got string '1e-4'");
            continue;
        }
        ck_assert_msg(rc == 0, "%s: %s", spellings[i], ct_error_message());
        ck_assert_msg(get_real(r, "crosscoder.lr") == 1e-4, "%s", spellings[i]);
        ck_assert_int_eq(get_int(r, "crosscoder.dict_size"), 16384);
        ct_recipe_free(r);
    }
}
END_TEST

START_TEST(includes_deep_merge)
{
    ct_recipe *r = load_fixture("tests/recipe/fixtures/include/child.yaml", NULL, 0);
    check_complete(&ct_recipe_schema, ct_recipe_root(r), "");
    ck_assert_str_eq(get_str(r, "model.family"), "gpt-neox"); /* from family.yaml */
    ck_assert_int_eq(get_int(r, "layer"), 8);
    ck_assert(get_real(r, "crosscoder.lr") == 1e-4);
    ck_assert(get_real(r, "crosscoder.l1_coeff") == 4.0);        /* second.yaml over family.yaml */
    ck_assert_int_eq(get_int(r, "crosscoder.topk.k_end"), 100);   /* family.yaml */
    ck_assert_int_eq(get_int(r, "crosscoder.topk.aux_k"), 64);    /* second.yaml */
    ck_assert_int_eq(get_int(r, "crosscoder.topk.k_start"), 800); /* child.yaml */
    ck_assert_int_eq(get_int(r, "crosscoder.topk.k_anneal_steps"), 5000); /* default */
    ck_assert_int_eq(get_int(r, "relie.top_k"), 9);
    ck_assert_int_eq(json_array_size(ct_recipe_get(r, "crosscoder.seeds")), 1); /* replaced */
    ck_assert_int_eq(get_int(r, "crosscoder.seeds.0"), 7);
    ck_assert_ptr_null(ct_recipe_get(r, "include"));
    ck_assert_str_eq(ct_recipe_name(r), "child");
    assert_loc(r, "crosscoder.lr", "/include/family.yaml", 6, 7);
    assert_loc(r, "layer", "/include/family.yaml", 4, 8);
    assert_loc(r, "crosscoder.l1_coeff", "/include/second.yaml", 3, 13);
    assert_loc(r, "crosscoder.topk.aux_k", "/include/second.yaml", 5, 12);
    assert_loc(r, "crosscoder.seeds.0", "/include/child.yaml", 10, 11);
    assert_loc(r, "crosscoder.topk.k_start", "/include/child.yaml", 12, 14);
    assert_loc(r, "crosscoder.topk.k_anneal_steps", "<default>", 0, 0);
    assert_loc(r, "", "/include/child.yaml", 1, 1);
    /* the text is the top-level file's */
    char path[PATH_MAX], *text;
    size_t len;
    ct_test_src(path, sizeof path, "tests/recipe/fixtures/include/child.yaml");
    ck_assert_int_eq(ct_read_file(path, &text, &len), 0);
    ck_assert_str_eq(ct_recipe_text(r), text);
    free(text);

    /* include vs inline */
    ct_recipe *in = load_fixture("tests/recipe/fixtures/include/inline.yaml", NULL, 0);
    assert_same(r, in, 1);
    ct_recipe_free(in);
    ct_recipe_free(r);

    /* a null removes an included value: the default applies again */
    r = load_fixture("tests/recipe/fixtures/include/nulls.yaml", NULL, 0);
    ck_assert(get_real(r, "crosscoder.lr") == 5e-5);
    assert_loc(r, "crosscoder.lr", "<default>", 0, 0);
    ck_assert(get_real(r, "crosscoder.l1_coeff") == 3.0);
    ct_recipe_free(r);

    /* a string recipe resolves includes next to its name */
    char name[PATH_MAX];
    ct_test_src(name, sizeof name, "tests/recipe/fixtures/include/virtual.yaml");
    ct_recipe_options o = CT_RECIPE_OPTIONS_INIT;
    ck_assert_int_eq(ct_recipe_load_string(name, "include: [empty.yaml, family.yaml]\nname: v\n"
                                           "model:\n  checkpoints: [{name: a, source: x, tokens: 1}, "
                                           "{name: b, source: y, tokens: 2}]\n"
                                           "corpus: {files: [c.txt]}\ntuples: [[a, b]]\n", &o, &r), 0);
    ck_assert_int_eq(get_int(r, "relie.top_k"), 7);
    ct_recipe_free(r);
}
END_TEST

START_TEST(include_from_embedded)
{
    ct_recipe *r = load_fixture("tests/recipe/fixtures/include/uses_embedded.yaml", NULL, 0);
    ck_assert_int_eq(get_int(r, "layer"), 8);
    ck_assert_str_eq(get_str(r, "model.family"), "gpt-neox");
    assert_loc(r, "layer", "<embedded>/families/pythia.yaml", 8, 8);
    assert_loc(r, "crosscoder.lr", "<embedded>/families/pythia.yaml", 23, 7);
    ct_recipe_free(r);
}
END_TEST

START_TEST(set_overrides)
{
    const char *sets[] = {
        "crosscoder.lr=1e-4",
        "crosscoder.seeds=[1, 2]",
        "model.checkpoints.1.source=hf:o/m@r9",
        "corpus.languages.en=0.5",
        "layer=2",
        "layer=5",
        "crosscoder.topk.k_end=50",
        "relie={top_k: 3}",
        "tuples.0=[a, b]",
    };
    ct_recipe *r = load_str(MIN_RECIPE "relie: {ig_steps: 20}\n", sets, sizeof sets / sizeof *sets);
    ck_assert(get_real(r, "crosscoder.lr") == 1e-4);
    json_t *want = json_pack("[ii]", 1, 2);
    ck_assert(json_equal(ct_recipe_get(r, "crosscoder.seeds"), want));
    json_decref(want);
    ck_assert_str_eq(get_str(r, "model.checkpoints.1.source"), "hf:o/m@r9");
    ck_assert_str_eq(get_str(r, "model.checkpoints.1.name"), "b"); /* the rest of the entry stays */
    ck_assert(get_real(r, "corpus.languages.en") == 0.5);
    ck_assert_int_eq(get_int(r, "layer"), 5); /* the last override wins */
    ck_assert_int_eq(get_int(r, "crosscoder.topk.k_end"), 50);
    ck_assert_int_eq(get_int(r, "crosscoder.topk.k_start"), 1000);
    ck_assert_int_eq(get_int(r, "relie.top_k"), 3);
    ck_assert_int_eq(get_int(r, "relie.ig_steps"), 10); /* a map value replaces the whole map */
    assert_loc(r, "crosscoder.lr", "<command line>", 1, 15);
    assert_loc(r, "crosscoder.seeds", "<command line>", 2, 18);
    assert_loc(r, "crosscoder.seeds.1", "<command line>", 2, 22);
    assert_loc(r, "model.checkpoints.1.source", "<command line>", 3, 28);
    assert_loc(r, "model.checkpoints.1.name", "t.yaml", 6, 14);
    assert_loc(r, "layer", "<command line>", 6, 7);
    assert_loc(r, "corpus.languages.en", "<command line>", 4, 21);
    ct_recipe_free(r);

    /* null removes a value; an override applies after includes */
    const char *unset[] = {"crosscoder.l1_coeff=null", "crosscoder.topk.k_end=~", "crosscoder.lr="};
    r = load_fixture("tests/recipe/fixtures/include/child.yaml", unset, 3);
    ck_assert(get_real(r, "crosscoder.l1_coeff") == 2.0);
    ck_assert_int_eq(get_int(r, "crosscoder.topk.k_end"), 200);
    ck_assert_int_eq(get_int(r, "crosscoder.topk.aux_k"), 64);
    ck_assert(get_real(r, "crosscoder.lr") == 5e-5);
    ct_recipe_free(r);

    /* an override through a YAML alias changes only the path it names */
    const char *alias_set[] = {"toy.inputs.0=z"};
    r = load_str(MIN_RECIPE "toy: {inputs: &in [p, q]}\nlanguages: *in\n", alias_set, 1);
    ck_assert_str_eq(get_str(r, "toy.inputs.0"), "z");
    ck_assert_str_eq(get_str(r, "languages.0"), "p");
    ct_recipe_free(r);
}
END_TEST

START_TEST(get_paths)
{
    ct_recipe *r = load_str(MIN_RECIPE, NULL, 0);
    ck_assert_str_eq(get_str(r, "model.checkpoints.1.name"), "b");
    ck_assert_ptr_eq(ct_recipe_get(r, ""), ct_recipe_root(r));
    ck_assert_ptr_null(ct_recipe_get(r, "model.checkpoints.2"));
    ck_assert_ptr_null(ct_recipe_get(r, "model.checkpoints.x"));
    ck_assert_ptr_null(ct_recipe_get(r, "model.checkpoints.-1"));
    ck_assert_ptr_null(ct_recipe_get(r, "crosscoder.lr."));
    ck_assert_ptr_null(ct_recipe_get(r, "crosscoder.lr.x"));
    ck_assert_ptr_null(ct_recipe_get(r, "nope"));
    ct_recipe_free(r);
}
END_TEST

START_TEST(file_paths_resolve)
{
    ct_recipe *r = load_fixture("tests/recipe/fixtures/base.yaml", NULL, 0);
    char dir[PATH_MAX], want[PATH_MAX + 64], path[PATH_MAX];
    ct_test_src(dir, sizeof dir, "tests/recipe/fixtures");
    ct_test_src(path, sizeof path, "tests/recipe/fixtures/base.yaml");
    ck_assert_str_eq(ct_recipe_path(r), path);
    char *p;
    ck_assert_int_eq(ct_recipe_resolve_path(r, "corpus.files.0", &p), 0);
    snprintf(want, sizeof want, "%s/text/*.txt", dir);
    ck_assert_str_eq(p, want);
    free(p);
    ck_assert_int_eq(ct_recipe_resolve_path(r, "corpus.files.1", &p), 0);
    ck_assert_str_eq(p, "/abs/corpus.txt");
    free(p);
    ck_assert_int_eq(ct_recipe_resolve_path(r, "model.checkpoints.0.source", &p), 0);
    snprintf(want, sizeof want, "%s/ckpt/early", dir);
    ck_assert_str_eq(p, want);
    free(p);
    ck_assert_int_eq(ct_recipe_resolve_path(r, "model.checkpoints.1.source", &p), 0);
    ck_assert_str_eq(p, "hf:EleutherAI/pythia-1b@step512");
    free(p);
    ck_assert_int_eq(ct_recipe_resolve_path(r, "layer", &p), CT_EINVAL);
    ck_assert_int_eq(ct_recipe_resolve_path(r, "corpus.files.9", &p), CT_ENOTFOUND);
    ct_recipe_free(r);

    const char *sets[] = {"corpus.files=[rel.txt]"};
    r = load_fixture("tests/recipe/fixtures/base.yaml", sets, 1);
    ck_assert_int_eq(ct_recipe_resolve_path(r, "corpus.files.0", &p), 0);
    ck_assert_str_eq(p, "rel.txt"); /* command-line paths are relative to the working directory */
    free(p);
    ct_recipe_free(r);
}
END_TEST

START_TEST(embedded_recipes)
{
    size_t n;
    const ct_embedded_file *e = ct_recipe_embedded(&n);
    ck_assert_uint_ge(n, 1);
    const ct_embedded_file *pythia = NULL;
    for (size_t i = 0; i < n; i++) {
        if (i)
            ck_assert_msg(strcmp(e[i - 1].name, e[i].name) < 0, "not sorted: %s, %s", e[i - 1].name, e[i].name);
        if (strcmp(e[i].name, "families/pythia.yaml") == 0)
            pythia = &e[i];
    }
    ck_assert_ptr_nonnull(pythia);
    /* byte-identical to the file in the source tree */
    char path[PATH_MAX], *text;
    size_t len;
    ct_test_src(path, sizeof path, "recipes/families/pythia.yaml");
    ck_assert_int_eq(ct_read_file(path, &text, &len), 0);
    ck_assert_uint_eq(strlen(pythia->text), len);
    ck_assert_str_eq(pythia->text, text);
    free(text);

    /* by name: the family alone is not a complete recipe, so the error names the embedded file */
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load("families/pythia", NULL, &r), CT_EINVAL);
    ck_assert_msg(strncmp(ct_error_message(), "<embedded>/families/pythia.yaml:", 32) == 0, "%s",
                  ct_error_message());
    ck_assert_int_eq(ct_recipe_load("pythia", NULL, &r), CT_EINVAL);
    ck_assert_msg(strncmp(ct_error_message(), "<embedded>/families/pythia.yaml:", 32) == 0, "%s",
                  ct_error_message());
    ck_assert_int_eq(ct_recipe_load("no-such-recipe", NULL, &r), CT_ENOTFOUND);
    ck_assert_int_eq(ct_recipe_load("families/../../etc/passwd", NULL, &r), CT_ENOTFOUND);

    /* completed on the command line, it loads */
    const char *sets[] = {"name=from-embedded",
                          "model.checkpoints=[{name: a, source: x, tokens: 1}, {name: b, source: y, tokens: 2}]",
                          "corpus.files=[c.txt]", "tuples=[[a, b]]"};
    ct_recipe_options o = {sets, 4};
    ck_assert_msg(ct_recipe_load("families/pythia.yaml", &o, &r) == 0, "%s", ct_error_message());
    ck_assert_str_eq(ct_recipe_path(r), "<embedded>/families/pythia.yaml");
    ck_assert_str_eq(ct_recipe_text(r), pythia->text);
    ck_assert_int_eq(get_int(r, "layer"), 8);
    ck_assert_str_eq(ct_recipe_name(r), "from-embedded");
    ct_recipe_free(r);
}
END_TEST

START_TEST(paper_example)
{
    ct_recipe *r = load_fixture("tests/recipe/fixtures/pythia-1b.yaml", NULL, 0);
    check_complete(&ct_recipe_schema, ct_recipe_root(r), "");
    ck_assert_str_eq(ct_recipe_name(r), "pythia-1b");
    ck_assert_str_eq(get_str(r, "model.family"), "gpt-neox");
    ck_assert_int_eq(get_int(r, "layer"), 8);
    ck_assert_int_eq(json_array_size(ct_recipe_get(r, "model.checkpoints")), 4);
    ck_assert_int_eq(get_int(r, "model.checkpoints.0.tokens"), 128000000);
    ck_assert_int_eq(get_int(r, "model.checkpoints.3.tokens"), 286000000000LL);
    ck_assert_int_eq(json_array_size(ct_recipe_get(r, "tuples")), 4);
    ck_assert_int_eq(json_array_size(ct_recipe_get(r, "tuples.3")), 3);
    ck_assert_int_eq(json_array_size(ct_recipe_get(r, "tasks")), 4);
    ck_assert_int_eq(get_int(r, "crosscoder.tokens") / get_int(r, "crosscoder.batch_size"), 97656);
    ck_assert(get_real(r, "crosscoder.dec_init_norm") == 0.08);
    ct_recipe_free(r);

    /* recipes/README.md shows this file verbatim */
    char path[PATH_MAX], *example, *readme;
    size_t len;
    ct_test_src(path, sizeof path, "tests/recipe/fixtures/pythia-1b.yaml");
    ck_assert_int_eq(ct_read_file(path, &example, &len), 0);
    ct_test_src(path, sizeof path, "recipes/README.md");
    ck_assert_int_eq(ct_read_file(path, &readme, &len), 0);
    ck_assert_msg(strstr(readme, example) != NULL, "recipes/README.md does not show %s verbatim", path);
    free(example);
    free(readme);
}
END_TEST

/* One README table row per schema field, generated from the table. */
static void readme_rows(const ct_sfield *f, const char *prefix, char **buf, size_t *len, size_t *cap)
{
    for (const ct_sfield *s = f->fields; s->name; s++) {
        char path[256], type[256], def[128], row[2048];
        snprintf(path, sizeof path, "%s%s", prefix, s->name);
        ct_sfield_type_name(s, type, sizeof type);
        if (s->flags & CT_SF_NOT_IN_TOY)
            snprintf(def, sizeof def, "required (not with `toy`)");
        else if (s->flags & CT_SF_REQUIRED)
            snprintf(def, sizeof def, "required");
        else if (s->flags & CT_SF_OPTIONAL)
            snprintf(def, sizeof def, "optional");
        else
            snprintf(def, sizeof def, "`%s`", s->def);
        int n = snprintf(row, sizeof row, "| `%s` | %s | %s | %s |\n", path, type, def, s->doc);
        while (*len + (size_t)n + 1 > *cap) {
            *cap = *cap ? 2 * *cap : 4096;
            *buf = realloc(*buf, *cap);
            ck_assert_ptr_nonnull(*buf);
        }
        memcpy(*buf + *len, row, (size_t)n + 1);
        *len += (size_t)n;
        char sub[300];
        if (s->type == CT_SF_MAP) {
            snprintf(sub, sizeof sub, "%s.", path);
            readme_rows(s, sub, buf, len, cap);
        } else if (s->type == CT_SF_LIST && s->elem->type == CT_SF_MAP) {
            snprintf(sub, sizeof sub, "%s.N.", path);
            readme_rows(s->elem, sub, buf, len, cap);
        }
    }
}

START_TEST(readme_documents_schema)
{
    char *table = NULL, *readme, path[PATH_MAX];
    size_t len = 0, cap = 0, rlen;
    readme_rows(&ct_recipe_schema, "", &table, &len, &cap);
    ct_test_src(path, sizeof path, "recipes/README.md");
    ck_assert_int_eq(ct_read_file(path, &readme, &rlen), 0);
    if (!strstr(readme, table)) {
        /* Leave the expected table where it can be pasted into the README. */
        char out[PATH_MAX];
        ct_test_tmpdir(out, sizeof out, "recipe-readme");
        strncat(out, "/table.md", sizeof out - strlen(out) - 1);
        ct_write_file_atomic(out, table, len);
        ck_abort_msg("recipes/README.md does not hold the schema table; expected table in %s", out);
    }
    free(table);
    free(readme);
}
END_TEST

/* Relative paths written in an embedded recipe resolve against the project root
 * (the source tree holding data/, or $CROSSTIME_HOME). */
START_TEST(embedded_paths_resolve_against_project_root)
{
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load("tiny-en", NULL, &r), 0);
    char *path;
    ck_assert_int_eq(ct_recipe_resolve_path(r, "corpus.files.0", &path), 0);
    char expect[PATH_MAX];
    ct_test_src(expect, sizeof expect, "data/corpora/en/*.txt.zst");
    ck_assert_str_eq(path, expect);
    free(path);
    setenv("CROSSTIME_HOME", "/opt/crosstime", 1);
    ck_assert_int_eq(ct_recipe_resolve_path(r, "corpus.files.0", &path), 0);
    ck_assert_str_eq(path, "/opt/crosstime/data/corpora/en/*.txt.zst");
    free(path);
    unsetenv("CROSSTIME_HOME");
    ct_recipe_free(r);
}
END_TEST


/* lang/<code> expands to that language's installed tasks (CLAMS phenomena of the paper,
 * MultiBLiMP) in place, without repeats; a language without data names it. */
START_TEST(language_sets_expand)
{
    const char *sets[] = {"tasks=[clams/fr/simple_agrmt, lang/fr, blimp/anaphor_gender_agreement]"};
    ct_recipe *r = load_str(MIN_RECIPE, sets, 1);
    json_t *tasks = ct_recipe_get(r, "tasks");
    size_t i, simple = 0, clams_fr = 0, mb = 0;
    json_t *v;
    json_array_foreach(tasks, i, v) {
        const char *t = json_string_value(v);
        ck_assert_msg(strncmp(t, "lang/", 5) != 0, "unexpanded %s", t);
        simple += strcmp(t, "clams/fr/simple_agrmt") == 0;
        clams_fr += strncmp(t, "clams/fr/", 9) == 0;
        mb += strncmp(t, "multiblimp/fra", 14) == 0;
    }
    ck_assert_str_eq(json_string_value(json_array_get(tasks, 0)), "clams/fr/simple_agrmt");
    ck_assert_str_eq(json_string_value(json_array_get(tasks, json_array_size(tasks) - 1)),
                     "blimp/anaphor_gender_agreement");
    ck_assert_uint_eq(simple, 1);
    ck_assert_uint_eq(clams_fr, 7); /* the paper's seven CLAMS phenomena */
    ck_assert_uint_ge(mb, 1);
    ct_recipe_free(r);

    const char *bad[] = {"tasks=[lang/xx]"};
    ct_recipe_options o = CT_RECIPE_OPTIONS_INIT;
    o.sets = bad;
    o.n_sets = 1;
    ck_assert_int_eq(ct_recipe_load_string("t.yaml", MIN_RECIPE, &o, &r), CT_EINVAL);
    ck_assert_msg(strstr(ct_error_message(), "tasks.0") && strstr(ct_error_message(), "\"xx\""), "%s",
                  ct_error_message());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recipe_load");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, schema_is_consistent);
    tcase_add_test(tc, defaults_filled);
    tcase_add_test(tc, toy_recipe);
    tcase_add_test(tc, optional_sections_filled);
    tcase_add_test(tc, canonical_values);
    tcase_add_loop_test(tc, size_spellings, 0, (int)(sizeof sizes / sizeof *sizes));
    tcase_add_test(tc, number_spellings);
    tcase_add_test(tc, includes_deep_merge);
    tcase_add_test(tc, include_from_embedded);
    tcase_add_test(tc, set_overrides);
    tcase_add_test(tc, get_paths);
    tcase_add_test(tc, file_paths_resolve);
    tcase_add_test(tc, embedded_recipes);
    tcase_add_test(tc, embedded_paths_resolve_against_project_root);
    tcase_add_test(tc, paper_example);
    tcase_add_test(tc, readme_documents_schema);
    tcase_add_test(tc, language_sets_expand);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}
