/* `crosstime inspect tokenize`: encode and decode through stdin/stdout, error and
 * usage exit statuses. The command runs in a child process with redirected streams. */
#include <sys/wait.h>

#include "cli/commands.h"
#include "common/io.h"
#include "tests/support/subcommand.h"
#include "tests/support/testutil.h"

static char dir[PATH_MAX];

/* Runs the command with `input` on stdin; returns its exit status, output in *out. */
static int run_cmd(char **argv, int argc, const char *input, char **out, char **err)
{
    return ct_test_subcommand(ct_cmd_inspect_tokenize, argv, argc, input, dir, out, err);
}

START_TEST(encode_decode_errors_usage)
{
    ct_test_tmpdir(dir, sizeof dir, "tokcli");
    char tok[PATH_MAX];
    ct_test_src(tok, sizeof tok, "tests/fixtures/tokenizers/gpt-neox-20b/20B_tokenizer.json.zst");
    char *out, *err;
    char *enc[] = {"tokenize", "--tokenizer", tok};
    /* Reference ids from Hugging Face (llama.cpp's mpt vectors): "Hello world",
     * " Hello World!", "\n =". */
    int rc = run_cmd(enc, 3, "\"Hello world\"\n\" Hello World!\"\n\"\"\n\"\\n =\"\n", &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_str_eq(out, "[12092,1533]\n[24387,3645,2]\n[]\n[187,426]\n");
    free(out);
    free(err);

    char *dec[] = {"tokenize", "--tokenizer", tok, "--decode"};
    rc = run_cmd(dec, 4, "[12092,1533]\n[]\n[0,187,426]\n", &out, &err);
    ck_assert_msg(rc == 0, "stderr: %s", err);
    ck_assert_str_eq(out, "\"Hello world\"\n\"\"\n\"<|endoftext|>\\n =\"\n");
    free(out);
    free(err);
    char *dec_skip[] = {"tokenize", "--decode", "--skip-special", "--tokenizer", tok};
    rc = run_cmd(dec_skip, 5, "[0,187,426]\n", &out, &err);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out, "\"\\n =\"\n");
    free(out);
    free(err);

    rc = run_cmd(enc, 3, "\"ok\"\nnot json\n", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err, "line 2"));
    free(out);
    free(err);
    rc = run_cmd(dec, 4, "[1, -3]\n", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err, "element 1"));
    free(out);
    free(err);
    rc = run_cmd(enc, 3, "[1, 2]\n", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err, "JSON string"));
    free(out);
    free(err);

    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/none.json", dir);
    char *bad[] = {"tokenize", "--tokenizer", missing};
    rc = run_cmd(bad, 3, "\"x\"\n", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err, "none.json"));
    free(out);
    free(err);

    char *no_tok[] = {"tokenize"};
    rc = run_cmd(no_tok, 1, "", &out, &err);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(err, "usage"));
    free(out);
    free(err);
    char *unknown[] = {"tokenize", "--tokenizer", tok, "--bogus"};
    rc = run_cmd(unknown, 4, "", &out, &err);
    ck_assert_int_eq(rc, 2);
    free(out);
    free(err);
    char names[4][PATH_MAX + 16];
    const char *files[] = {"in", "out", "err"};
    for (int i = 0; i < 3; i++) {
        snprintf(names[i], sizeof names[i], "%s/%s", dir, files[i]);
        unlink(names[i]);
    }
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inspect_tokenize");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, encode_decode_errors_usage);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}
