/* `crosstime inspect tokenize`: encode and decode through stdin/stdout, error and
 * usage exit statuses. The command runs in a child process with redirected streams. */
#include <sys/wait.h>

#include "cli/commands.h"
#include "common/io.h"
#include "tests/support/testutil.h"

static char dir[PATH_MAX];

/* Whole file, NUL-terminated (plain stdio: the outputs may be empty). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + got + 1 > cap) {
            cap = (n + got + 1) * 2;
            buf = realloc(buf, cap);
        }
        memcpy(buf + n, chunk, got);
        n += got;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    buf[n] = 0;
    return buf;
}

/* Runs the command with `input` on stdin; returns its exit status, output in *out. */
static int run_cmd(char **argv, int argc, const char *input, char **out, char **err)
{
    char in_path[PATH_MAX + 16], out_path[PATH_MAX + 16], err_path[PATH_MAX + 16];
    snprintf(in_path, sizeof in_path, "%s/in", dir);
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    snprintf(err_path, sizeof err_path, "%s/err", dir);
    ck_assert_int_eq(ct_write_file_atomic(in_path, input, strlen(input)), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!freopen(in_path, "r", stdin) || !freopen(out_path, "w", stdout) || !freopen(err_path, "w", stderr))
            _exit(99);
        int rc = ct_cmd_inspect_tokenize(argc, argv);
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    *out = slurp(out_path);
    *err = slurp(err_path);
    return WEXITSTATUS(status);
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
