/* The report page from a synthetic source (report/report.h): a multilingual recipe
 * whose latents, validation and overlap tables exist while accuracy and training do
 * not. Checks the heatmap and latent sections, the "not computed yet" notices,
 * escaping of decoded token text, empty tables, and byte-identical renders. */
#include "report/report.h"
#include "tests/support/testutil.h"

#include "common/error.h"

#include <jansson.h>

typedef struct {
    json_t *tables; /* name -> table */
    const char *annotation;
} fake;

static json_t *fake_record(void *user, const char *label)
{
    (void)user;
    (void)label;
    return NULL; /* nothing is computed: provenance rows say so */
}

static int fake_artifact(void *user, const char *label, char **data, size_t *len)
{
    fake *f = user;
    if (strcmp(label, "annotate/a-b/seed1") != 0 || !f->annotation)
        return CT_ENOTFOUND;
    *data = strdup(f->annotation);
    *len = strlen(*data);
    return 0;
}

static json_t *fake_table(void *user, const char *name)
{
    fake *f = user;
    return json_incref(json_object_get(f->tables, name));
}

static const char recipe_json[] =
    "{\"name\": \"multi\", \"description\": \"a <b>test</b>\", \"languages\": [\"en\", \"fr\"],"
    " \"model\": {\"checkpoints\": [{\"name\": \"a\", \"tokens\": 1000000000}, {\"name\": \"b\", \"tokens\": 4000000000}]},"
    " \"tuples\": [[\"a\", \"b\"]], \"crosscoder\": {\"seeds\": [1]}, \"relie\": {\"low\": 0.3, \"high\": 0.7}}";

static const char steps_json[] = "[{\"label\": \"train/a-b/seed1\", \"kind\": \"train\"},"
                                 " {\"label\": \"annotate/a-b/seed1\", \"kind\": \"annotate\"}]";

static const char annotation[] =
    "{\"crosscoder\": \"a-b/seed1\", \"latents\": [{\"latent\": 7, \"dec_norm\": [1, 2], \"contexts\": ["
    "[{\"seq\": 3, \"pos\": 4, \"act\": 2.5, \"joint\": 2.0, \"ids\": [1, 2], \"pieces\": [\"<script>\", \" x\"],"
    " \"fire\": 0}], []]}]}";

static json_t *tables(void)
{
    json_error_t err;
    json_t *t = json_loads(
        "{\"latents\": {\"kind\": \"flat\", \"rows\": ["
        " {\"crosscoder\": \"a-b/seed1\", \"task\": \"clams/en/simple_agrmt\", \"latent\": 7, \"checkpoint\": \"a\","
        "  \"ie\": 0.1, \"relie\": 0.2, \"reldec\": 0.4, \"class\": \"a-specific\", \"selected\": true,"
        "  \"delta_lpd\": 0.3, \"delta_acc\": 0.1},"
        " {\"crosscoder\": \"a-b/seed1\", \"task\": \"clams/en/simple_agrmt\", \"latent\": 7, \"checkpoint\": \"b\","
        "  \"ie\": 0.02, \"relie\": 0.2, \"reldec\": 0.4, \"class\": \"a-specific\", \"selected\": true,"
        "  \"delta_lpd\": 0.05, \"delta_acc\": 0.0},"
        " {\"crosscoder\": \"a-b/seed1\", \"task\": \"clams/en/simple_agrmt\", \"latent\": 9, \"checkpoint\": \"b\","
        "  \"ie\": 0.3, \"relie\": 0.9, \"reldec\": 0.6, \"class\": \"b-specific\", \"selected\": false,"
        "  \"delta_lpd\": null, \"delta_acc\": null}]},"
        " \"validation\": {\"kind\": \"flat\", \"rows\": [{\"crosscoder\": \"a-b/seed1\", \"task\": "
        "\"clams/en/simple_agrmt\", \"n_latents\": 1, \"rho_relie\": null, \"rho_reldec\": null, \"key\": \"abc\"}]},"
        " \"overlap\": {\"kind\": \"flat\", \"rows\": [{\"crosscoder\": \"a-b/seed1\", \"lang_a\": \"en\", \"lang_b\":"
        " \"fr\", \"top_k\": 100, \"count\": 25, \"fraction\": 0.25}]},"
        " \"accuracy\": {\"rows\": []}}",
        0, &err);
    ck_assert_msg(t != NULL, "%s", err.text);
    return t;
}

static char *render(fake *f)
{
    json_t *recipe = json_loads(recipe_json, 0, NULL), *steps = json_loads(steps_json, 0, NULL);
    ck_assert_ptr_nonnull(recipe);
    ck_assert_ptr_nonnull(steps);
    ct_report_source src = {f, recipe, steps, fake_record, fake_artifact, fake_table};
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ck_assert_int_eq(ct_report_write(&src, out), 0);
    fclose(out);
    json_decref(recipe);
    json_decref(steps);
    return buf;
}

START_TEST(multilingual_page_from_tables)
{
    fake f = {tables(), annotation};
    char *html = render(&f);
    /* the heatmap of the overlap table: en-fr 0.25 both ways */
    ck_assert_ptr_nonnull(strstr(html, "id=\"plot-overlap-a-b/seed1\""));
    ck_assert_ptr_nonnull(strstr(html, ">0.25</text>"));
    /* RelIE scatter with the class regions and a latent section for the selected one */
    ck_assert_ptr_nonnull(strstr(html, "id=\"plot-relie-a-b/seed1\""));
    ck_assert_ptr_nonnull(strstr(html, "class=\"band\""));
    ck_assert_ptr_nonnull(strstr(html, "id=\"latent-a-b/seed1-7\""));
    ck_assert_ptr_null(strstr(html, "id=\"latent-a-b/seed1-9\"")); /* not selected, not annotated */
    /* decoded token text is escaped and highlighted */
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_nonnull(strstr(html, "<mark>&lt;script&gt;</mark> x"));
    ck_assert_ptr_nonnull(strstr(html, "a &lt;b&gt;test&lt;/b&gt;"));
    /* a checkpoint where it never fires, and languages the shards cannot tell */
    ck_assert_ptr_nonnull(strstr(html, "Does not fire on the annotated sequences"));
    ck_assert_ptr_nonnull(strstr(html, "Languages it fires on: not recorded"));
    /* what is missing says so; undefined correlations show as a dash */
    ck_assert_ptr_nonnull(strstr(html, "Task accuracy (no tasks): not computed yet"));
    ck_assert_ptr_nonnull(strstr(html, "Training: not computed yet"));
    ck_assert_ptr_nonnull(strstr(html, "<td>&#8212;</td>"));
    /* the same data, the same bytes */
    char *again = render(&f);
    ck_assert_str_eq(html, again);
    free(again);
    free(html);
    json_decref(f.tables);
}
END_TEST

START_TEST(no_tables_no_artifacts)
{
    fake f = {json_object(), NULL};
    char *html = render(&f);
    ck_assert_ptr_nonnull(strstr(html, "</html>\n"));
    ck_assert_ptr_nonnull(strstr(html, "Latent attribution (RelIE, RelDec, classes): not computed yet"));
    ck_assert_ptr_nonnull(strstr(html, "Language overlap: not computed yet"));
    ck_assert_ptr_nonnull(strstr(html, "Ablation validation (Spearman correlations): not computed yet"));
    free(html);
    /* empty tables are the same as missing ones */
    json_decref(f.tables);
    json_t *t = json_loads("{\"latents\": {\"rows\": []}, \"overlap\": {\"rows\": []}}", 0, NULL);
    f.tables = t;
    html = render(&f);
    ck_assert_ptr_nonnull(strstr(html, "Latent attribution (RelIE, RelDec, classes): not computed yet"));
    free(html);
    json_decref(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("report_page");
    TCase *tc = tcase_create("page");
    tcase_add_test(tc, multilingual_page_from_tables);
    tcase_add_test(tc, no_tables_no_artifacts);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}
