/* `crosstime inspect task`: its JSON output parses and carries the numbers of the
 * task (checked against the Hugging Face reference counts of ref_counts.py), examples,
 * --list, errors and usage. The command runs in a child process with redirected
 * streams. */
#include <jansson.h>
#include <sys/wait.h>

#include "cli/commands.h"
#include "common/io.h"
#include "tests/support/subcommand.h"
#include "tests/support/testutil.h"

static char dir[PATH_MAX];

/* Runs the command; returns its exit status, stdout and stderr in *out / *err. */
static int run_cmd(char **argv, int argc, char **out, char **err)
{
    return ct_test_subcommand(ct_cmd_inspect_task, argv, argc, NULL, dir, out, err);
}

/* Splits `text` into lines in place; returns their number. */
static size_t lines(char *text, char **v, size_t cap)
{
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (n < cap)
            v[n++] = l;
        else
            n++;
    return n;
}

static json_t *parse(const char *line)
{
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    ck_assert_msg(o != NULL, "not JSON (%s): %s", je.text, line);
    ck_assert(json_is_object(o));
    return o;
}

static json_int_t get_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "no integer \"%s\"", key);
    return json_integer_value(v);
}

START_TEST(summary_and_examples)
{
    ct_test_tmpdir(dir, sizeof dir, "taskcli");
    char tok[PATH_MAX];
    ct_test_src(tok, sizeof tok, "tests/fixtures/tokenizers/gpt-neox-20b/20B_tokenizer.json.zst");
    char *out, *err, *v[1024];

    char *a1[] = {"task", "blimp/distractor_agreement_relational_noun", "--tokenizer", tok};
    int rc = run_cmd(a1, 4, &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_uint_eq(lines(out, v, 1024), 1);
    json_t *o = parse(v[0]);
    ck_assert_str_eq(json_string_value(json_object_get(o, "task")),
                     "blimp/distractor_agreement_relational_noun");
    ck_assert_int_eq(get_int(o, "pairs"), 1000);
    ck_assert_int_eq(get_int(o, "kept"), 918);
    ck_assert_int_eq(get_int(o, "examples"), 918);
    json_t *d = json_object_get(o, "dropped");
    ck_assert_uint_eq(json_object_size(d), 1);
    ck_assert_int_eq(get_int(d, "different_token_counts"), 82);
    ck_assert_str_eq(json_string_value(json_object_get(o, "digest")),
                     "37c1553f4c6594b162256edce0f6b40bad1898b311c8aaa69605b526b6494a34");
    json_decref(o);
    free(out);
    free(err);

    char *a2[] = {
        "task", "blimp/distractor_agreement_relational_noun", "--tokenizer", tok, "--examples", "--max", "5"};
    rc = run_cmd(a2, 7, &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_uint_eq(lines(out, v, 1024), 6);
    o = parse(v[0]);
    ck_assert_int_eq(get_int(o, "kept"), 918);
    ck_assert_int_eq(get_int(o, "examples"), 5);
    json_decref(o);
    /* Hugging Face ids of "A niece of most senators" and " hasn" / " haven". */
    o = parse(v[1]);
    static const json_int_t prefix[] = {34, 43551, 273, 954, 31650};
    json_t *p = json_object_get(o, "prefix");
    ck_assert_uint_eq(json_array_size(p), 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(json_integer_value(json_array_get(p, i)), prefix[i]);
    ck_assert_int_eq(get_int(o, "good"), 11210);
    ck_assert_int_eq(get_int(o, "bad"), 6468);
    ck_assert_int_eq(get_int(o, "pair"), 0);
    ck_assert_int_eq(get_int(o, "line"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(o, "prefix_text")), "A niece of most senators");
    json_decref(o);
    for (size_t i = 2; i < 6; i++) {
        o = parse(v[i]);
        ck_assert_int_gt(get_int(o, "pair"), 0);
        ck_assert_int_ne(get_int(o, "good"), get_int(o, "bad"));
        json_decref(o);
    }
    free(out);
    free(err);

    char *a3[] = {"task", "multiblimp/fra", "--tokenizer=", "--examples"};
    char tokarg[PATH_MAX + 16];
    snprintf(tokarg, sizeof tokarg, "--tokenizer=%s", tok);
    a3[2] = tokarg;
    rc = run_cmd(a3, 4, &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_uint_eq(lines(out, v, 1024), 1 + 169);
    o = parse(v[0]);
    ck_assert_int_eq(get_int(o, "pairs"), 255);
    ck_assert_int_eq(get_int(o, "kept"), 169);
    d = json_object_get(o, "dropped");
    ck_assert_int_eq(get_int(d, "different_token_counts"), 74);
    ck_assert_int_eq(get_int(d, "too_many_tokens"), 10);
    ck_assert_int_eq(get_int(d, "empty_prefix"), 2);
    json_decref(o);
    free(out);
    free(err);

    /* Without a tokenizer: the loader's drops only, texts as examples. */
    char *a4[] = {"task", "clams/fr/simple_agrmt", "--examples", "--max", "2"};
    rc = run_cmd(a4, 5, &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_uint_eq(lines(out, v, 1024), 3);
    o = parse(v[0]);
    ck_assert_int_eq(get_int(o, "pairs"), 280);
    ck_assert_int_eq(get_int(o, "kept"), 160);
    ck_assert(json_is_false(json_object_get(o, "tokenized")));
    ck_assert_int_eq(get_int(json_object_get(o, "dropped"), "not_one_word_difference"), 120);
    json_decref(o);
    o = parse(v[1]);
    ck_assert_str_eq(json_string_value(json_object_get(o, "good_text")), "sont");
    ck_assert_ptr_null(json_object_get(o, "good"));
    json_decref(o);
    free(out);
    free(err);
}
END_TEST

START_TEST(list_errors_usage)
{
    ct_test_tmpdir(dir, sizeof dir, "taskcli");
    char *out, *err, *v[1024];
    char *a1[] = {"task", "--list"};
    int rc = run_cmd(a1, 2, &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_uint_eq(lines(out, v, 1024), 67 + 22 + 4 * 7 + 4);
    ck_assert_str_eq(v[0], "blimp/adjunct_island");
    free(out);
    free(err);

    char *a2[] = {"task", "--list", "--languages", "en,fr"};
    rc = run_cmd(a2, 4, &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_uint_eq(lines(out, v, 1024), 17);
    ck_assert_str_eq(v[16], "multiblimp/fra");
    free(out);
    free(err);

    char *a3[] = {"task", "blimp/regular_plural_subject_verb_agreement"};
    rc = run_cmd(a3, 2, &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(err, "unknown task"));
    ck_assert_ptr_nonnull(strstr(err, "blimp/regular_plural_subject_verb_agreement_1"));
    free(out);
    free(err);

    char *a4[] = {"task", "blimp/wh_island", "--tokenizer", "/nonexistent/tokenizer.json"};
    rc = run_cmd(a4, 4, &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/tokenizer.json"));
    free(out);
    free(err);

    char *u1[] = {"task"};
    char *u2[] = {"task", "blimp/wh_island", "--max", "x"};
    char *u3[] = {"task", "--list", "blimp/wh_island"};
    char *u4[] = {"task", "blimp/wh_island", "--bogus"};
    ck_assert_int_eq(run_cmd(u1, 1, &out, &err), 2);
    free(out);
    free(err);
    ck_assert_int_eq(run_cmd(u2, 4, &out, &err), 2);
    free(out);
    free(err);
    ck_assert_int_eq(run_cmd(u3, 3, &out, &err), 2);
    free(out);
    free(err);
    ck_assert_int_eq(run_cmd(u4, 3, &out, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "usage: crosstime inspect task"));
    free(out);
    free(err);

    /* --data adds a folder in front of the shipped data. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/tasks/clams/xx", dir);
    ck_assert_int_eq(ct_mkdirs(path, 0755), 0);
    snprintf(path, sizeof path, "%s/tasks/clams/xx/simple_agrmt.txt", dir);
    const char *text = "True\tle chat dort\nFalse\tle chat dorment\n";
    ck_assert_int_eq(ct_write_file_atomic(path, text, strlen(text)), 0);
    char *a5[] = {"task", "clams/xx/simple_agrmt", "--data", dir, "--examples"};
    rc = run_cmd(a5, 5, &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_uint_eq(lines(out, v, 1024), 2);
    json_t *o = parse(v[1]);
    ck_assert_str_eq(json_string_value(json_object_get(o, "prefix_text")), "Le chat");
    ck_assert_str_eq(json_string_value(json_object_get(o, "bad_text")), "dorment");
    json_decref(o);
    free(out);
    free(err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inspect_task");
    TCase *tc = tcase_create("inspect_task");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, summary_and_examples);
    tcase_add_test(tc, list_errors_usage);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}
