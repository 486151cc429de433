/* Bad recipes: each must fail with exactly the expected message, located at the
 * file, line and column that caused it. */
#include "common/error.h"
#include "pipeline/recipe/recipe.h"
#include "tests/support/testutil.h"

/* A valid recipe (lines 1-10); cases append lines from 11 on or edit a copy. */
#define MIN_RECIPE                                                                           \
    "name: t\n"                                                                              \
    "model:\n"                                                                               \
    "  family: gpt-neox\n"                                                                   \
    "  checkpoints:\n"                                                                       \
    "    - {name: a, source: hf:o/m@r1, tokens: 1M}\n"                                       \
    "    - {name: b, source: hf:o/m@r2, tokens: 2M}\n"                                       \
    "layer: 1\n"                                                                             \
    "corpus:\n"                                                                              \
    "  files: [x.txt]\n"

#define TUPLES "tuples: [[a, b]]\n"

typedef struct {
    const char *what;
    const char *yaml;
    const char *sets[3];
    const char *message;
} bad_case;

static const bad_case bad[] = {
    {"unknown field with a typo suggestion", MIN_RECIPE TUPLES "crosscoder:\n  lrr: 1e-4\n", {NULL},
     "bad.yaml:12:3: unknown field 'lrr' in crosscoder (did you mean 'lr'?)"},
    {"unknown field without suggestion", MIN_RECIPE TUPLES "colour: red\n", {NULL},
     "bad.yaml:11:1: unknown field 'colour' at top level"},
    {"transposed letters are suggested", MIN_RECIPE TUPLES "crosscoder:\n  topk:\n    aux_coef: 1\n", {NULL},
     "bad.yaml:13:5: unknown field 'aux_coef' in crosscoder.topk (did you mean 'aux_coeff'?)"},
    {"unknown field inside a list element",
     "name: t\nmodel:\n  family: olmo\n  checkpoints:\n    - {name: a, source: x, tokens: 1M, step: 3}\n",
     {NULL}, "bad.yaml:5:40: unknown field 'step' in model.checkpoints.0"},
    {"wrong type: string for number", MIN_RECIPE TUPLES "crosscoder:\n  lr: fast\n", {NULL},
     "bad.yaml:12:7: crosscoder.lr: expected a number, got string 'fast'"},
    {"wrong type: fraction for integer", MIN_RECIPE TUPLES "crosscoder:\n  dict_size: 1.5\n", {NULL},
     "bad.yaml:12:14: crosscoder.dict_size: expected an integer, got number 1.5"},
    {"wrong type: scalar for list", MIN_RECIPE TUPLES "crosscoder:\n  seeds: 5\n", {NULL},
     "bad.yaml:12:10: crosscoder.seeds: expected a list of integers, got integer 5"},
    {"wrong type: quoted number in a list", MIN_RECIPE TUPLES "crosscoder:\n  seeds: [1, '2']\n", {NULL},
     "bad.yaml:12:14: crosscoder.seeds.1: expected an integer, got string '2'"},
    {"wrong type: integer for string", "name: 123\n", {NULL},
     "bad.yaml:1:7: name: expected a string, got integer 123"},
    {"wrong type: map for section", MIN_RECIPE TUPLES "relie: 3\n", {NULL},
     "bad.yaml:11:8: relie: expected a map, got integer 3"},
    {"wrong type: yes is not a boolean",
     MIN_RECIPE TUPLES "pretrain:\n  model: {hidden: 64, layers: 2, heads: 4, ctx: 128, parallel_residual: yes}\n"
     "  batch_sequences: 8\n  steps: 10\n  save_steps: [10]\n", {NULL},
     "bad.yaml:12:73: pretrain.model.parallel_residual: expected a boolean (true or false), got string 'yes'"},
    {"bad token count", MIN_RECIPE TUPLES "crosscoder:\n  tokens: 1.5\n", {NULL},
     "bad.yaml:12:11: crosscoder.tokens: expected a token count (e.g. 400M, 400_000_000, 4e8), got number 1.5"},
    {"bad token count suffix", MIN_RECIPE TUPLES "crosscoder:\n  tokens: 4Q\n", {NULL},
     "bad.yaml:12:11: crosscoder.tokens: expected a token count (e.g. 400M, 400_000_000, 4e8), got string '4Q'"},
    {"value out of range", MIN_RECIPE TUPLES "crosscoder:\n  l1_warmup: 1.5\n", {NULL},
     "bad.yaml:12:14: crosscoder.l1_warmup: expected a number in [0, 1], got number 1.5"},
    {"integer below its minimum", MIN_RECIPE TUPLES, {"corpus.seq_len=1"},
     "<command line>:1:16: corpus.seq_len: expected an integer >= 2, got integer 1"},
    {"integer below its minimum, nested", MIN_RECIPE TUPLES "evaluation: {ce_batch: 0}\n", {NULL},
     "bad.yaml:11:24: evaluation.ce_batch: expected an integer >= 1, got integer 0"},
    {"integer out of range", MIN_RECIPE TUPLES "annotate: {seed: 99999999999999999999}\n", {NULL},
     "bad.yaml:11:18: annotate.seed: integer out of range"},
    {"missing required field at top level", "description: x\n", {NULL},
     "bad.yaml:1:1: missing required field 'name'"},
    {"science sections are required without toy", "name: t\n", {NULL},
     "bad.yaml:1:1: missing required field 'model'"},
    {"missing required field in a block map",
     "name: t\nmodel:\n  checkpoints:\n    - {name: a, source: x, tokens: 1M}\n", {NULL},
     "bad.yaml:3:3: model: missing required field 'family'"},
    {"missing required field in a flow map",
     "name: t\nmodel:\n  family: olmo\n  checkpoints:\n    - {name: a, source: x, tokens: 1M}\n"
     "    - {name: b, source: y}\n", {NULL},
     "bad.yaml:6:7: model.checkpoints.1: missing required field 'tokens'"},
    {"a required list must not be empty", "name: t\nmodel:\n  family: olmo\n  checkpoints: []\n", {NULL},
     "bad.yaml:4:16: model.checkpoints: expected a list of maps with at least one element, got an empty list"},
    {"null means absent, so a required field is missing", MIN_RECIPE "tuples:\n", {NULL},
     "bad.yaml:1:1: missing required field 'tuples'"},
    {"bad enum value",
     "name: t\nmodel:\n  family: gpt\n", {NULL},
     "bad.yaml:3:11: model.family: expected one of 'gpt-neox', 'bloom', 'olmo', got string 'gpt'"},
    {"bad enum value, nested", MIN_RECIPE TUPLES "crosscoder: {type: topk}\n", {NULL},
     "bad.yaml:11:20: crosscoder.type: expected one of 'l1', 'batchtopk', got string 'topk'"},
    {"bad task form", MIN_RECIPE TUPLES "tasks: [blimp/x, clams/en]\n", {NULL},
     "bad.yaml:11:18: tasks.1: expected a task 'blimp/<paradigm>', 'clams/<lang>/<phenomenon>', "
     "'multiblimp/<lang>[/<phenomenon>]' or a language set 'lang/<code>', got string 'clams/en'"},
    {"bad hf source",
     "name: t\nmodel:\n  family: olmo\n  checkpoints:\n    - {name: a, source: 'hf:allenai/OLMo', tokens: 1M}\n",
     {NULL},
     "bad.yaml:5:25: model.checkpoints.0.source: expected a local directory, 'hf:ORG/NAME@REVISION' "
     "or 'pretrain:<step>', got string 'hf:allenai/OLMo'"},
    {"pretrain source without a pretrain section",
     "name: t\nmodel:\n  family: gpt-neox\n  checkpoints:\n    - {name: a, source: pretrain:100, tokens: 1M}\n"
     "    - {name: b, source: pretrain:200, tokens: 2M}\nlayer: 1\ncorpus:\n  files: [x.txt]\n" TUPLES,
     {NULL}, "bad.yaml:5:25: model.checkpoints.0.source: 'pretrain:100' needs a 'pretrain' section"},
    {"pretrain source at a step that is not saved",
     "name: t\nmodel:\n  family: gpt-neox\n  checkpoints:\n    - {name: a, source: pretrain:100, tokens: 1M}\n"
     "    - {name: b, source: pretrain:200, tokens: 2M}\nlayer: 1\ncorpus:\n  files: [x.txt]\n" TUPLES
     "pretrain:\n  model: {hidden: 64, layers: 2, heads: 4, ctx: 128}\n  batch_sequences: 8\n  steps: 200\n"
     "  save_steps: [100, 150]\n",
     {NULL}, "bad.yaml:6:25: model.checkpoints.1.source: 'pretrain:200': step is not in pretrain.save_steps"},
    {"heads must divide hidden",
     MIN_RECIPE TUPLES "pretrain:\n  model: {hidden: 64, layers: 2, heads: 3, ctx: 128}\n  batch_sequences: 8\n"
     "  steps: 200\n  save_steps: [100]\n",
     {NULL}, "bad.yaml:12:41: pretrain.model.heads: must divide pretrain.model.hidden (64)"},
    {"relie bounds crossed (written low)", MIN_RECIPE TUPLES "relie: {low: 0.8}\n", {NULL},
     "bad.yaml:11:14: relie.low: must be less than relie.high (0.7)"},
    {"relie bounds crossed (written high)", MIN_RECIPE TUPLES "relie: {high: 0.2}\n", {NULL},
     "bad.yaml:11:15: relie.high: must be greater than relie.low (0.3)"},
    {"tuple naming an unknown checkpoint", MIN_RECIPE "tuples: [[a, c]]\n", {NULL},
     "bad.yaml:10:14: tuples.0.1: unknown checkpoint 'c' (checkpoints: a, b)"},
    {"tuple with one checkpoint", MIN_RECIPE "tuples: [[a]]\n", {NULL},
     "bad.yaml:10:10: tuples.0: a tuple needs at least 2 distinct checkpoints, got 1"},
    {"tuple repeating a checkpoint", MIN_RECIPE "tuples: [[a, b], [a, a]]\n", {NULL},
     "bad.yaml:10:22: tuples.1.1: checkpoint 'a' appears twice in the tuple"},
    {"tuple out of training order", MIN_RECIPE "tuples:\n  - [b, a]\n", {NULL},
     "bad.yaml:11:9: tuples.0.1: a tuple lists checkpoints in training order, but 'a' comes after 'b'"},
    {"checkpoints not ordered by tokens",
     "name: t\nmodel:\n  family: gpt-neox\n  checkpoints:\n    - {name: a, source: x, tokens: 2M}\n"
     "    - {name: b, source: y, tokens: 2_000_000}\nlayer: 1\ncorpus:\n  files: [x.txt]\n" TUPLES,
     {NULL},
     "bad.yaml:6:36: model.checkpoints.1.tokens: checkpoints must be in strictly increasing order of "
     "tokens: 'b' (2000000 tokens) comes after 'a' (2000000 tokens)"},
    {"duplicate checkpoint name",
     "name: t\nmodel:\n  family: gpt-neox\n  checkpoints:\n    - {name: a, source: x, tokens: 1M}\n"
     "    - {name: a, source: y, tokens: 2M}\nlayer: 1\ncorpus:\n  files: [x.txt]\n" TUPLES,
     {NULL}, "bad.yaml:6:14: model.checkpoints.1.name: duplicate checkpoint name 'a' (also model.checkpoints.0)"},
    {"YAML syntax error", "name: t\nmodel:\n  family: gpt-neox\n   layer: 8\n", {NULL},
     "bad.yaml:4:9: invalid YAML: mapping values are not allowed in this context"},
    {"YAML syntax error with context", "name: t\ntuples: [[a, b]\nlayer: 3\n", {NULL},
     "bad.yaml:3:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 2)"},
    {"YAML syntax error at the end of a text without newline", "name: [a", {NULL},
     "bad.yaml:1:9: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1)"},
    {"invalid UTF-8", "name: t\ndescription: caf\xe9\n", {NULL},
     "bad.yaml:2:17: invalid YAML: incomplete UTF-8 octet sequence"},
    {"duplicate key", MIN_RECIPE TUPLES "layer: 2\n", {NULL},
     "bad.yaml:11:1: duplicate key 'layer' (first at line 7)"},
    {"top level is not a map", "- a\n- b\n", {NULL},
     "bad.yaml:1:1: expected a map of recipe fields, got a list"},
    {"two documents", "name: a\n---\nname: b\n", {NULL},
     "bad.yaml:2:1: a recipe is a single YAML document"},
    {"unsupported tag", MIN_RECIPE TUPLES "description: !!binary aGVsbG8=\n", {NULL},
     "bad.yaml:11:14: unsupported YAML tag 'tag:yaml.org,2002:binary' (only !!str is understood)"},
    {"undefined alias", MIN_RECIPE TUPLES "description: *nope\n", {NULL},
     "bad.yaml:11:14: undefined alias *nope"},
    {"include of the wrong type", "include: {a: 1}\nname: t\n", {NULL},
     "bad.yaml:1:10: include: expected a file name or a list of file names, got a map"},
    {"missing include next to a string recipe", "name: t\ninclude: nope.yaml\n", {NULL},
     "bad.yaml:2:10: include 'nope.yaml': no such file (looked for nope.yaml and among the embedded recipes)"},
    {"--set value of the wrong type", MIN_RECIPE TUPLES, {"crosscoder.lr=abc"},
     "<command line>:1:15: crosscoder.lr: expected a number, got string 'abc'"},
    {"--set of an unknown field", MIN_RECIPE TUPLES, {"layer=2", "crosscoder.lrr=1"},
     "<command line>:2:12: unknown field 'lrr' in crosscoder (did you mean 'lr'?)"},
    {"--set index out of range", MIN_RECIPE TUPLES, {"crosscoder.lr=1e-4", "model.checkpoints.5.source=x"},
     "<command line>:2:1: --set 'model.checkpoints.5.source=x': index 5 is out of range "
     "(model.checkpoints has 2 elements)"},
    {"--set name into a list", MIN_RECIPE TUPLES, {"model.checkpoints.first.source=x"},
     "<command line>:1:1: --set 'model.checkpoints.first.source=x': 'first' is not an index into "
     "the list model.checkpoints"},
    {"--set through a scalar", MIN_RECIPE TUPLES, {"model.family.x=1"},
     "<command line>:1:1: --set 'model.family.x=1': model.family is string 'gpt-neox', not a map or list"},
    {"--set without =", MIN_RECIPE TUPLES, {"crosscoder.lr"},
     "<command line>:1:1: --set 'crosscoder.lr': expected PATH=VALUE"},
    {"--set with an empty path segment", MIN_RECIPE TUPLES, {"crosscoder..lr=1"},
     "<command line>:1:1: --set 'crosscoder..lr=1': malformed path"},
    {"--set of include", MIN_RECIPE TUPLES, {"include=x.yaml"},
     "<command line>:1:1: --set 'include=x.yaml': includes cannot be changed from the command line"},
    {"--set with a YAML syntax error", MIN_RECIPE TUPLES, {"crosscoder.seeds=[1, 2"},
     "<command line>:1:23: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
     "sequence at line 1)"},
};

START_TEST(bad_recipe)
{
    const bad_case *c = &bad[_i];
    size_t n = 0;
    while (n < 3 && c->sets[n])
        n++;
    ct_recipe_options o = CT_RECIPE_OPTIONS_INIT;
    o.sets = c->sets;
    o.n_sets = n;
    ct_recipe *r = (ct_recipe *)1;
    int rc = ct_recipe_load_string("bad.yaml", c->yaml, &o, &r);
    ck_assert_msg(rc == CT_EINVAL, "%s: rc %d", c->what, rc);
    ck_assert_ptr_null(r);
    ck_assert_msg(strcmp(ct_error_message(), c->message) == 0, "%s:\n  got      %s\n  expected %s",
                  c->what, ct_error_message(), c->message);
}
END_TEST

/* Nested aliases expand to over a million nodes: refused instead of expanded. */
START_TEST(alias_bomb)
{
    char yaml[4096];
    size_t k = (size_t)snprintf(yaml, sizeof yaml, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int lvl = 1; lvl <= 6; lvl++) {
        k += (size_t)snprintf(yaml + k, sizeof yaml - k, "a%d: &a%d [", lvl, lvl);
        for (int j = 0; j < 10; j++)
            k += (size_t)snprintf(yaml + k, sizeof yaml - k, "%s*a%d", j ? ", " : "", lvl - 1);
        k += (size_t)snprintf(yaml + k, sizeof yaml - k, "]\n");
    }
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load_string("bomb.yaml", yaml, NULL, &r), CT_EINVAL);
    ck_assert_msg(strstr(ct_error_message(), "document too large after expanding aliases") != NULL,
                  "%s", ct_error_message());
    ck_assert_msg(strncmp(ct_error_message(), "bomb.yaml:6:", 12) == 0, "%s", ct_error_message());
}
END_TEST

START_TEST(deep_nesting)
{
    char yaml[512];
    memset(yaml, '[', 100);
    memset(yaml + 100, ']', 100);
    yaml[200] = '\0';
    char doc[600];
    snprintf(doc, sizeof doc, "name: %s\n", yaml);
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load_string("deep.yaml", doc, NULL, &r), CT_EINVAL);
    ck_assert_str_eq(ct_error_message(), "deep.yaml:1:70: nesting too deep");
}
END_TEST

static void fixture(char *buf, size_t n, const char *rel)
{
    char tmp[PATH_MAX];
    snprintf(buf, n, "%s", ct_test_src(tmp, sizeof tmp, rel));
}

START_TEST(include_cycle)
{
    char a[PATH_MAX], dir[PATH_MAX], want[4 * PATH_MAX + 200];
    fixture(a, sizeof a, "tests/recipe/fixtures/cycle/a.yaml");
    fixture(dir, sizeof dir, "tests/recipe/fixtures/cycle");
    snprintf(want, sizeof want,
             "%s/c.yaml:1:10: include cycle: %s/a.yaml -> %s/b.yaml -> %s/c.yaml -> %s/./a.yaml", dir,
             dir, dir, dir, dir);
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load(a, NULL, &r), CT_EINVAL);
    ck_assert_str_eq(ct_error_message(), want);

    fixture(a, sizeof a, "tests/recipe/fixtures/cycle/self.yaml");
    snprintf(want, sizeof want, "%s/self.yaml:2:10: include cycle: %s/self.yaml -> %s/self.yaml", dir, dir, dir);
    ck_assert_int_eq(ct_recipe_load(a, NULL, &r), CT_EINVAL);
    ck_assert_str_eq(ct_error_message(), want);
}
END_TEST

START_TEST(missing_include)
{
    char path[PATH_MAX], dir[PATH_MAX], want[3 * PATH_MAX + 200];
    fixture(path, sizeof path, "tests/recipe/fixtures/include/missing.yaml");
    fixture(dir, sizeof dir, "tests/recipe/fixtures/include");
    snprintf(want, sizeof want,
             "%s/missing.yaml:4:5: include 'no-such-family.yaml': no such file (looked for "
             "%s/no-such-family.yaml and among the embedded recipes)", dir, dir);
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load(path, NULL, &r), CT_EINVAL);
    ck_assert_str_eq(ct_error_message(), want);
}
END_TEST

START_TEST(empty_recipe_file)
{
    char path[PATH_MAX], want[PATH_MAX + 64];
    fixture(path, sizeof path, "tests/recipe/fixtures/include/empty.yaml");
    snprintf(want, sizeof want, "%s:1:1: missing required field 'name'", path);
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load(path, NULL, &r), CT_EINVAL);
    ck_assert_str_eq(ct_error_message(), want);
}
END_TEST

START_TEST(missing_recipe)
{
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load("/no/such/recipe.yaml", NULL, &r), CT_ENOTFOUND);
    ck_assert_ptr_null(r);
    ck_assert_msg(strncmp(ct_error_message(),
                          "/no/such/recipe.yaml: no such recipe file, and no embedded recipe of that name "
                          "(embedded: ", 87) == 0, "%s", ct_error_message());
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "families/pythia.yaml"));
}
END_TEST

/* An error in an included file names that file, not the including one. */
START_TEST(error_in_included_file)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], want[PATH_MAX + 200];
    ct_test_tmpdir(dir, sizeof dir, "recipe-inc");
    snprintf(path, sizeof path, "%s/fam.yaml", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# family\ncrosscoder:\n  beta3: 0.5\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/top.yaml", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(MIN_RECIPE TUPLES "include: fam.yaml\n", f);
    fclose(f);
    ct_recipe *r;
    ck_assert_int_eq(ct_recipe_load(path, NULL, &r), CT_EINVAL);
    snprintf(want, sizeof want, "%s/fam.yaml:3:3: unknown field 'beta3' in crosscoder (did you mean 'beta1'?)", dir);
    ck_assert_str_eq(ct_error_message(), want);
    snprintf(path, sizeof path, "%s/fam.yaml", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/top.yaml", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recipe_errors");
    TCase *tc = tcase_create("errors");
    tcase_add_loop_test(tc, bad_recipe, 0, (int)(sizeof bad / sizeof *bad));
    tcase_add_test(tc, alias_bomb);
    tcase_add_test(tc, deep_nesting);
    tcase_add_test(tc, include_cycle);
    tcase_add_test(tc, missing_include);
    tcase_add_test(tc, missing_recipe);
    tcase_add_test(tc, empty_recipe_file);
    tcase_add_test(tc, error_in_included_file);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}
