/* The corpus reader: text and jsonl documents from plain and compressed files, glob
 * expansion in byte order, errors with file:line, and the shipped corpora. Language
 * mixtures (ct_corpus_open_mix): the drawing order against an independent smooth
 * weighted round-robin in exact integers, proportions over a long stream, determinism,
 * each language's files in order, a language running out, the language and file of
 * every document, and errors. */
#include <archive.h>
#include <archive_entry.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>

#include "common/error.h"
#include "common/io.h"
#include "models/corpus/corpus.h"
#include "tests/support/testutil.h"

/* Removes a test's scratch directory and everything in it. */
static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir) { ck_assert_int_eq(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0); }

static void write_plain(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* One raw stream compressed with libarchive's filter (gzip, zstd, xz, bzip2). */
static void write_compressed(const char *path, const char *data, size_t n, int filter)
{
    struct archive *a = archive_write_new();
    ck_assert_int_eq(archive_write_add_filter(a, filter), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_set_format_raw(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "data");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)n);
    ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_data(a, data, n), (la_ssize_t)n);
    archive_entry_free(e);
    ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* Reads every document; returns them joined with '|' (caller frees) and the count. */
static char *read_all(const char *const *files, size_t n, ct_corpus_format fmt, const char *field,
                      size_t *ndocs, int *rc_out)
{
    ct_corpus *c;
    int rc = ct_corpus_open(files, n, fmt, field, &c);
    if (rc) {
        *rc_out = rc;
        *ndocs = 0;
        return NULL;
    }
    size_t cap = 256, len = 0, count = 0;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    out[0] = 0;
    const char *s;
    size_t sl;
    while ((rc = ct_corpus_next(c, &s, &sl)) == 1) {
        while (len + sl + 2 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        if (count)
            out[len++] = '|';
        memcpy(out + len, s, sl);
        len += sl;
        out[len] = 0;
        count++;
    }
    ct_corpus_close(c);
    *rc_out = rc;
    *ndocs = count;
    return out;
}

START_TEST(test_format_parse)
{
    ct_corpus_format f;
    ck_assert_int_eq(ct_corpus_format_parse("text", &f), 0);
    ck_assert_int_eq(f, CT_CORPUS_TEXT);
    ck_assert_int_eq(ct_corpus_format_parse("jsonl", &f), 0);
    ck_assert_int_eq(f, CT_CORPUS_JSONL);
    ck_assert_int_eq(ct_corpus_format_parse("csv", &f), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "csv"));
}
END_TEST

START_TEST(test_text_lines)
{
    char dir[256], p[512];
    ct_test_tmpdir(dir, sizeof dir, "corpus");
    snprintf(p, sizeof p, "%s/a.txt", dir);
    /* empty lines skipped, CRLF stripped, no final newline, a line of spaces kept */
    const char text[] = "first doc\n\nsecond\r\n\n\n  \nlast";
    write_plain(p, text, sizeof text - 1);
    const char *files[] = {p};
    ct_corpus *c;
    ck_assert_int_eq(ct_corpus_open(files, 1, CT_CORPUS_TEXT, NULL, &c), 0);
    const char *s, *where;
    size_t n, line;
    ct_corpus_where(c, &where, &line);
    ck_assert_ptr_null(where);
    ck_assert_uint_eq(line, 0);
    const char *want[] = {"first doc", "second", "  ", "last"};
    const size_t lines[] = {1, 3, 6, 7};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(ct_corpus_next(c, &s, &n), 1);
        ck_assert_uint_eq(n, strlen(want[i]));
        ck_assert(memcmp(s, want[i], n) == 0);
        ck_assert_int_eq(s[n], 0);
        ct_corpus_where(c, &where, &line);
        ck_assert_str_eq(where, p);
        ck_assert_uint_eq(line, lines[i]);
    }
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 0);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 0);
    ck_assert_uint_eq(ct_corpus_n_files(c), 1);
    ck_assert_str_eq(ct_corpus_file(c, 0), p);
    ck_assert_ptr_null(ct_corpus_file(c, 1));
    ct_corpus_close(c);
    rm_tree(dir);
}
END_TEST

START_TEST(test_compressed)
{
    char dir[256], p[4][512];
    ct_test_tmpdir(dir, sizeof dir, "corpus");
    const char text[] = "alpha beta\n\ngamma \xC3\xA9t\xC3\xA9\ndelta\n";
    const int filters[] = {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_BZIP2};
    /* names say nothing: the format is found from the content */
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/part%d.txt", dir, i);
        write_compressed(p[i], text, sizeof text - 1, filters[i]);
        FILE *f = fopen(p[i], "rb");
        unsigned char head[2];
        ck_assert_uint_eq(fread(head, 1, 2, f), 2);
        fclose(f);
        ck_assert(memcmp(head, "al", 2) != 0); /* really compressed */
    }
    const char *files[] = {p[0], p[1], p[2], p[3]};
    size_t n;
    int rc;
    char *all = read_all(files, 4, CT_CORPUS_TEXT, NULL, &n, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(n, 12);
    const char *one = "alpha beta|gamma \xC3\xA9t\xC3\xA9|delta";
    char want[256];
    snprintf(want, sizeof want, "%s|%s|%s|%s", one, one, one, one);
    ck_assert_str_eq(all, want);
    free(all);
    rm_tree(dir);
}
END_TEST

START_TEST(test_jsonl)
{
    char dir[256], p[512], q[512];
    ct_test_tmpdir(dir, sizeof dir, "corpus");
    snprintf(p, sizeof p, "%s/docs.jsonl", dir);
    const char text[] = "{\"text\": \"one\\ntwo\", \"id\": 1}\n"
                        "\n"
                        "   \n"
                        "{\"id\": 2, \"text\": \"caf\\u00e9 \\ud83e\\udd99\"}\n"
                        "{\"body\": \"x\", \"text\": \"a\\u0000b\"}\n";
    write_compressed(p, text, sizeof text - 1, ARCHIVE_FILTER_GZIP);
    const char *files[] = {p};
    ct_corpus *c;
    ck_assert_int_eq(ct_corpus_open(files, 1, CT_CORPUS_JSONL, NULL, &c), 0);
    const char *s;
    size_t n, line;
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 1);
    ck_assert_uint_eq(n, 7);
    ck_assert(memcmp(s, "one\ntwo", 7) == 0);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 1);
    ck_assert_str_eq(s, "caf\xC3\xA9 \xF0\x9F\xA6\x99");
    ct_corpus_where(c, NULL, &line);
    ck_assert_uint_eq(line, 4);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 1);
    ck_assert_uint_eq(n, 3); /* an embedded NUL survives */
    ck_assert(memcmp(s, "a\0b", 3) == 0);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 0);
    ct_corpus_close(c);

    /* another field */
    ck_assert_int_eq(ct_corpus_open(files, 1, CT_CORPUS_JSONL, "body", &c), 0);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), CT_EINVAL);
    char want[600];
    snprintf(want, sizeof want, "%s:1: the object has no \"body\" field", p);
    ck_assert_str_eq(ct_error_message(), want);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 0); /* stays at the end */
    ct_corpus_close(c);

    /* a bad line: file and line in the message */
    snprintf(q, sizeof q, "%s/bad.jsonl", dir);
    const char bad[] = "{\"text\": \"ok\"}\n{\"text\": \"ok too\"}\n{\"text\": oops}\n{\"text\": \"never\"}\n";
    write_plain(q, bad, sizeof bad - 1);
    const char *bfiles[] = {q};
    ck_assert_int_eq(ct_corpus_open(bfiles, 1, CT_CORPUS_JSONL, "text", &c), 0);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 1);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 1);
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), CT_EINVAL);
    snprintf(want, sizeof want, "%s:3: not valid JSON", q);
    ck_assert_msg(strncmp(ct_error_message(), want, strlen(want)) == 0, "message: %s", ct_error_message());
    ct_corpus_close(c);

    /* not an object, not a string */
    const char *cases[][2] = {{"[1, 2]\n", "expected a JSON object"},
                              {"{\"text\": 5}\n", "the \"text\" field is not a string"},
                              {"\"text\"\n", "expected a JSON object"}};
    for (int i = 0; i < 3; i++) {
        write_plain(q, cases[i][0], strlen(cases[i][0]));
        ck_assert_int_eq(ct_corpus_open(bfiles, 1, CT_CORPUS_JSONL, NULL, &c), 0);
        ck_assert_int_eq(ct_corpus_next(c, &s, &n), CT_EINVAL);
        snprintf(want, sizeof want, "%s:1: %s", q, cases[i][1]);
        ck_assert_str_eq(ct_error_message(), want);
        ct_corpus_close(c);
    }
    rm_tree(dir);
}
END_TEST

START_TEST(test_glob)
{
    char dir[256], p[512], pat[512];
    ct_test_tmpdir(dir, sizeof dir, "corpus");
    /* byte order: "B" < "a" < "a10" < "a2" (strcmp), whatever the locale says */
    const char *names[] = {"a2.txt", "a10.txt", "B.txt", "a.txt", "skip.md"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        char body[32];
        snprintf(body, sizeof body, "%s\n", names[i]);
        write_plain(p, body, strlen(body));
    }
    snprintf(pat, sizeof pat, "%s/*.txt", dir);
    snprintf(p, sizeof p, "%s/skip.md", dir);
    const char *files[] = {p, pat};
    size_t n;
    int rc;
    char *all = read_all(files, 2, CT_CORPUS_TEXT, NULL, &n, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(all, "skip.md|B.txt|a.txt|a10.txt|a2.txt");
    free(all);

    char **paths;
    size_t np;
    ck_assert_int_eq(ct_corpus_expand(files, 2, &paths, &np), 0);
    ck_assert_uint_eq(np, 5);
    ck_assert_str_eq(paths[0], p);
    snprintf(p, sizeof p, "%s/a10.txt", dir);
    ck_assert_str_eq(paths[3], p);
    ct_corpus_paths_free(paths, np);

    /* a pattern that matches nothing is an error naming it */
    snprintf(pat, sizeof pat, "%s/*.jsonl", dir);
    const char *none[] = {pat};
    ct_corpus *c;
    ck_assert_int_eq(ct_corpus_open(none, 1, CT_CORPUS_TEXT, NULL, &c), CT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), pat));
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "matches no file"));

    /* a missing plain file fails when it is reached, naming it */
    snprintf(p, sizeof p, "%s/missing.txt", dir);
    snprintf(pat, sizeof pat, "%s/B.txt", dir);
    const char *miss[] = {pat, p};
    ck_assert_int_eq(ct_corpus_open(miss, 2, CT_CORPUS_TEXT, NULL, &c), 0);
    const char *s;
    ck_assert_int_eq(ct_corpus_next(c, &s, &n), 1);
    ck_assert_int_lt(ct_corpus_next(c, &s, &n), 0);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), p));
    ct_corpus_close(c);

    ck_assert_int_eq(ct_corpus_open(miss, 0, CT_CORPUS_TEXT, NULL, &c), CT_EINVAL);
    rm_tree(dir);
}
END_TEST

START_TEST(test_invalid_utf8)
{
    char dir[256], p[512];
    ct_test_tmpdir(dir, sizeof dir, "corpus");
    snprintf(p, sizeof p, "%s/bad.txt", dir);
    /* overlong '/', a surrogate, a truncated sequence: each is an error at its line */
    const char *bad[] = {"ok\nabc\xC0\xAF\n", "ok\nx\xED\xA0\x80y\n", "ok\n\xE2\x82"};
    const size_t col[] = {4, 2, 1};
    for (int i = 0; i < 3; i++) {
        write_plain(p, bad[i], strlen(bad[i]));
        const char *files[] = {p};
        ct_corpus *c;
        ck_assert_int_eq(ct_corpus_open(files, 1, CT_CORPUS_TEXT, NULL, &c), 0);
        const char *s;
        size_t n;
        ck_assert_int_eq(ct_corpus_next(c, &s, &n), 1);
        ck_assert_int_eq(ct_corpus_next(c, &s, &n), CT_EINVAL);
        char want[600];
        snprintf(want, sizeof want, "%s:2: invalid UTF-8 at byte %zu of the line", p, col[i]);
        ck_assert_str_eq(ct_error_message(), want);
        ct_corpus_close(c);
    }
    /* every valid 2/3/4-byte form and ASCII runs longer than 8 bytes pass */
    const char good[] = "0123456789abcdef \xC2\x80 \xDF\xBF \xE0\xA0\x80 \xEF\xBF\xBF \xF0\x90\x80\x80 "
                        "\xF4\x8F\xBF\xBF end of a long ascii tail\n";
    write_plain(p, good, sizeof good - 1);
    const char *files[] = {p};
    size_t n;
    int rc;
    char *all = read_all(files, 1, CT_CORPUS_TEXT, NULL, &n, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(strlen(all), sizeof good - 2);
    free(all);
    rm_tree(dir);
}
END_TEST

/* The shipped corpora: every file decompresses to the size SOURCES.tsv records, and the
 * reader's documents are exactly the non-empty lines of the whole decompressed text. */
START_TEST(test_shipped_corpora)
{
    char path[4096], tsv[4096];
    ct_test_src(tsv, sizeof tsv, "data/corpora/SOURCES.tsv");
    char *sources;
    size_t slen;
    ck_assert_int_eq(ct_read_file(tsv, &sources, &slen), 0);
    size_t rows = 0, langs_en = 0;
    char *save = NULL;
    for (char *line = strtok_r(sources, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "lang\t", 5))
            continue;
        char *f[8];
        char *fs = NULL;
        int k = 0;
        for (char *tok = strtok_r(line, "\t", &fs); tok && k < 8; tok = strtok_r(NULL, "\t", &fs))
            f[k++] = tok;
        ck_assert_int_eq(k, 8);
        rows++;
        langs_en += !strcmp(f[0], "en");
        char rel[512];
        snprintf(rel, sizeof rel, "data/corpora/%s", f[1]);
        ct_test_src(path, sizeof path, rel);
        char *text;
        size_t len;
        ck_assert_msg(ct_read_file(path, &text, &len) == 0, "%s", ct_error_message());
        ck_assert_uint_eq(len, strtoull(f[6], NULL, 10));
        /* independent count of the non-empty lines and their bytes */
        size_t lines = 0, bytes = 0;
        for (size_t i = 0; i < len;) {
            size_t j = i;
            while (j < len && text[j] != '\n')
                j++;
            if (j > i) {
                lines++;
                bytes += j - i;
            }
            i = j + 1;
        }
        free(text);
        /* the book's license record is shipped beside it */
        char lic[4096], mark[128];
        snprintf(rel, sizeof rel, "data/corpora/licenses/%s.txt.gz", f[0]);
        char *ltext;
        ck_assert_int_eq(ct_read_file(ct_test_src(lic, sizeof lic, rel), &ltext, &len), 0);
        const char *base = strrchr(f[1], '/');
        snprintf(mark, sizeof mark, "==> licenses/%s_%.*s.txt <==\n", f[0], (int)strcspn(base + 1, "."), base + 1);
        char *at = strstr(ltext, mark);
        ck_assert_msg(at != NULL, "no license record %s", mark);
        ck_assert_ptr_nonnull(strstr(at, "===== HEADER (removed) ====="));
        free(ltext);
        if (rows % 8 != 1) /* the reader itself on a sample of the files */
            continue;
        const char *files[] = {path};
        ct_corpus *c;
        ck_assert_int_eq(ct_corpus_open(files, 1, CT_CORPUS_TEXT, NULL, &c), 0);
        const char *s;
        size_t n, docs = 0, dbytes = 0;
        int rc;
        while ((rc = ct_corpus_next(c, &s, &n)) == 1) {
            docs++;
            dbytes += n;
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(docs, lines);
        ck_assert_uint_eq(dbytes, bytes);
        ct_corpus_close(c);
    }
    free(sources);
    ck_assert_uint_eq(rows, 113);
    ck_assert_uint_eq(langs_en, 68);

    /* the recipe's glob finds every English book */
    ct_test_src(path, sizeof path, "data/corpora/en/*.txt.zst");
    const char *pat[] = {path};
    char **paths;
    size_t np;
    ck_assert_int_eq(ct_corpus_expand(pat, 1, &paths, &np), 0);
    ck_assert_uint_eq(np, 68);
    for (size_t i = 1; i < np; i++)
        ck_assert_int_lt(strcmp(paths[i - 1], paths[i]), 0);
    ct_corpus_paths_free(paths, np);
}
END_TEST

/* --- language mixtures --------------------------------------------------------- */

/* dir/<lang>-<f>.txt with `n` documents "<lang> <f> <i>". */
static void write_lang_file(const char *dir, const char *lang, int f, int n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s-%d.txt", dir, lang, f);
    FILE *fp = fopen(p, "w");
    ck_assert_ptr_nonnull(fp);
    for (int i = 0; i < n; i++)
        fprintf(fp, "%s %d %d\n", lang, f, i);
    ck_assert_int_eq(fclose(fp), 0);
}

typedef struct {
    char pattern[512];
    const char *files[1];
} lang_files;

static void lang_glob(lang_files *lf, const char *dir, const char *lang)
{
    snprintf(lf->pattern, sizeof lf->pattern, "%s/%s-*.txt", dir, lang);
    lf->files[0] = lf->pattern;
}

/* The reference: smooth weighted round-robin over integer weights, ties to the lower
 * index, with a language leaving (and its draw taken back) once `left` says it is
 * empty. Returns the language of draw number `n` (0-based) by replaying from scratch. */
typedef struct {
    int L;
    long long w[8], credit[8];
    int active[8];
} swrr;

static int swrr_next(swrr *s, const long long *left)
{
    for (;;) {
        long long total = 0;
        int best = -1;
        for (int i = 0; i < s->L; i++)
            if (s->active[i]) {
                s->credit[i] += s->w[i];
                total += s->w[i];
                if (best < 0 || s->credit[i] > s->credit[best])
                    best = i;
            }
        if (best < 0)
            return -1;
        s->credit[best] -= total;
        if (left[best] > 0)
            return best;
        for (int i = 0; i < s->L; i++)
            if (s->active[i])
                s->credit[i] -= s->w[i];
        s->credit[best] += total;
        s->active[best] = 0;
    }
}

/* Parses "<lang> <f> <i>". */
static void parse_doc(const char *text, size_t len, char *lang, int *f, int *i)
{
    char buf[64];
    ck_assert_uint_lt(len, sizeof buf);
    memcpy(buf, text, len);
    buf[len] = 0;
    ck_assert_int_eq(sscanf(buf, "%7s %d %d", lang, f, i), 3);
}

START_TEST(test_mix_matches_reference_and_reads_files_in_order)
{
    char dir[256];
    ct_test_tmpdir(dir, sizeof dir, "mix-ref");
    /* weights 1, 0.5, 0.25 scale exactly to the integers 4, 2, 1 */
    const char *names[3] = {"en", "fr", "pt"};
    const int docs[3][2] = {{500, 700}, {300, 20}, {90, 60}};
    const double weights[3] = {1, 0.5, 0.25};
    lang_files lf[3];
    ct_corpus_lang_spec spec[3];
    for (int l = 0; l < 3; l++) {
        for (int f = 0; f < 2; f++)
            write_lang_file(dir, names[l], f, docs[l][f]);
        lang_glob(&lf[l], dir, names[l]);
        spec[l] = (ct_corpus_lang_spec){names[l], lf[l].files, 1, weights[l]};
    }
    ct_corpus *c;
    ck_assert_msg(ct_corpus_open_mix(spec, 3, CT_CORPUS_TEXT, NULL, &c) == 0, "%s", ct_error_message());
    ck_assert_uint_eq(ct_corpus_n_langs(c), 3);
    ck_assert_str_eq(ct_corpus_lang_name(c, 1), "fr");
    ck_assert_ptr_null(ct_corpus_lang_name(c, 3));
    ck_assert_int_eq(ct_corpus_lang(c), -1);
    ck_assert_uint_eq(ct_corpus_n_files(c), 6);
    ck_assert_ptr_nonnull(strstr(ct_corpus_file(c, 2), "/fr-0.txt"));
    ck_assert_ptr_nonnull(strstr(ct_corpus_file(c, 5), "/pt-1.txt"));
    ck_assert_ptr_null(ct_corpus_file(c, 6));

    swrr ref = {3, {4, 2, 1}, {0}, {1, 1, 1}};
    long long left[3], total = 0;
    int next_f[3] = {0}, next_i[3] = {0};
    for (int l = 0; l < 3; l++) {
        left[l] = docs[l][0] + docs[l][1];
        total += left[l];
    }
    long long n = 0;
    const char *text;
    size_t len;
    int more;
    while ((more = ct_corpus_next(c, &text, &len)) == 1) {
        int want = swrr_next(&ref, left);
        ck_assert_int_ge(want, 0);
        ck_assert_msg(ct_corpus_lang(c) == want, "document %lld: language %d, reference %d", n, ct_corpus_lang(c),
                      want);
        char lang[8];
        int f, i;
        parse_doc(text, len, lang, &f, &i);
        ck_assert_str_eq(lang, names[want]);
        /* each language's files in order, each file's lines in order */
        ck_assert_int_eq(f, next_f[want]);
        ck_assert_int_eq(i, next_i[want]);
        if (++next_i[want] == docs[want][f]) {
            next_f[want]++;
            next_i[want] = 0;
        }
        const char *file;
        size_t line;
        ct_corpus_where(c, &file, &line);
        char suffix[32];
        snprintf(suffix, sizeof suffix, "/%s-%d.txt", names[want], f);
        ck_assert_ptr_nonnull(strstr(file, suffix));
        ck_assert_uint_eq(line, (size_t)i + 1);
        left[want]--;
        n++;
    }
    ck_assert_int_eq(more, 0);
    ck_assert_int_eq(n, total); /* every document of every language */
    ck_assert_int_eq(swrr_next(&ref, left), -1);
    ck_assert_int_eq(ct_corpus_lang(c), -1);
    ck_assert_int_eq(ct_corpus_next(c, &text, &len), 0);
    ct_corpus_close(c);
    rm_tree(dir);
}
END_TEST

/* While every language has documents, any prefix of n draws holds each language
 * within one draw per language of n times its share; weights need not be exact in
 * binary (METHOD §1's BLOOM weights). */
START_TEST(test_mix_proportions_and_determinism)
{
    char dir[256];
    ct_test_tmpdir(dir, sizeof dir, "mix-prop");
    static const char *const names[10] = {"en", "zh", "fr", "es", "pt", "ar", "vi", "hi", "id", "bn"};
    static const double w[10] = {.35, .19, .15, .13, .06, .05, .03, .02, .01, .01};
    enum { N = 6000 };
    lang_files lf[10];
    ct_corpus_lang_spec spec[10];
    for (int l = 0; l < 10; l++) {
        write_lang_file(dir, names[l], 0, N); /* enough that none runs out */
        lang_glob(&lf[l], dir, names[l]);
        spec[l] = (ct_corpus_lang_spec){names[l], lf[l].files, 1, w[l]};
    }
    ct_corpus *a, *b;
    ck_assert_int_eq(ct_corpus_open_mix(spec, 10, CT_CORPUS_TEXT, NULL, &a), 0);
    ck_assert_int_eq(ct_corpus_open_mix(spec, 10, CT_CORPUS_TEXT, NULL, &b), 0);
    long long count[10] = {0};
    double W = 0;
    for (int l = 0; l < 10; l++)
        W += w[l];
    double worst = 0;
    for (int n = 1; n <= N; n++) {
        const char *ta, *tb;
        size_t la, lb;
        ck_assert_int_eq(ct_corpus_next(a, &ta, &la), 1);
        ck_assert_int_eq(ct_corpus_next(b, &tb, &lb), 1);
        /* two readers of one mixture: the same documents in the same order */
        ck_assert_int_eq(ct_corpus_lang(a), ct_corpus_lang(b));
        ck_assert(la == lb && memcmp(ta, tb, la) == 0);
        count[ct_corpus_lang(a)]++;
        for (int l = 0; l < 10; l++) {
            double dev = fabs((double)count[l] - n * w[l] / W);
            if (dev > worst)
                worst = dev;
        }
    }
    ck_assert_msg(worst <= 10, "a language strayed %g documents from its share", worst);
    /* the shares themselves, over the whole stream */
    for (int l = 0; l < 10; l++)
        ck_assert_msg(fabs((double)count[l] / N - w[l] / W) < 0.002, "%s: %lld of %d", names[l], count[l], N);
    ct_corpus_close(a);
    ct_corpus_close(b);
    rm_tree(dir);
}
END_TEST

/* A language that runs out drops out; the others keep their proportions. */
START_TEST(test_mix_exhaustion)
{
    char dir[256];
    ct_test_tmpdir(dir, sizeof dir, "mix-end");
    const char *names[3] = {"a", "b", "c"};
    write_lang_file(dir, "a", 0, 7);
    write_lang_file(dir, "b", 0, 1000);
    write_lang_file(dir, "c", 0, 1000);
    lang_files lf[3];
    ct_corpus_lang_spec spec[3];
    const double w[3] = {3, 2, 1};
    for (int l = 0; l < 3; l++) {
        lang_glob(&lf[l], dir, names[l]);
        spec[l] = (ct_corpus_lang_spec){names[l], lf[l].files, 1, w[l]};
    }
    ct_corpus *c;
    ck_assert_int_eq(ct_corpus_open_mix(spec, 3, CT_CORPUS_TEXT, NULL, &c), 0);
    long long count[3] = {0}, after[3] = {0}, n = 0;
    const char *text;
    size_t len;
    int more;
    while ((more = ct_corpus_next(c, &text, &len)) == 1) {
        int l = ct_corpus_lang(c);
        ck_assert(l >= 0 && l < 3);
        ck_assert_int_eq(text[0], names[l][0]);
        count[l]++;
        if (count[0] == 7 && l != 0)
            after[l]++;
        n++;
        /* until b or c runs out, after a has: b twice as often as c */
        if (count[0] == 7 && count[1] < 1000 && count[2] < 1000)
            ck_assert_msg(llabs(after[1] - 2 * after[2]) <= 3, "b %lld, c %lld after a ran out", after[1],
                          after[2]);
    }
    ck_assert_int_eq(more, 0);
    ck_assert_int_eq(count[0], 7);
    ck_assert_int_eq(count[1], 1000);
    ck_assert_int_eq(count[2], 1000);
    ck_assert_int_eq(n, 2007);
    ct_corpus_close(c);
    rm_tree(dir);
}
END_TEST

START_TEST(test_mix_errors)
{
    char dir[256], bad[512];
    ct_test_tmpdir(dir, sizeof dir, "mix-err");
    write_lang_file(dir, "en", 0, 3);
    lang_files en;
    lang_glob(&en, dir, "en");
    ct_corpus *c = (ct_corpus *)1;
    ct_corpus_lang_spec spec[2] = {{"en", en.files, 1, 1}, {"fr", en.files, 1, 1}};
    ck_assert_int_eq(ct_corpus_open_mix(spec, 0, CT_CORPUS_TEXT, NULL, &c), CT_EINVAL);
    ck_assert_ptr_null(c);
    static const double bad_w[3] = {0, -1, NAN};
    for (int k = 0; k < 3; k++) {
        spec[1].weight = bad_w[k];
        ck_assert_int_eq(ct_corpus_open_mix(spec, 2, CT_CORPUS_TEXT, NULL, &c), CT_EINVAL);
        ck_assert_msg(strstr(ct_error_message(), "fr") && strstr(ct_error_message(), "weight"), "%s",
                      ct_error_message());
    }
    spec[1].weight = INFINITY;
    ck_assert_int_eq(ct_corpus_open_mix(spec, 2, CT_CORPUS_TEXT, NULL, &c), CT_EINVAL);
    spec[1].weight = 1;
    spec[1].name = "en";
    ck_assert_int_eq(ct_corpus_open_mix(spec, 2, CT_CORPUS_TEXT, NULL, &c), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "twice"));
    spec[1].name = "";
    ck_assert_int_eq(ct_corpus_open_mix(spec, 2, CT_CORPUS_TEXT, NULL, &c), CT_EINVAL);
    spec[1].name = "fr";
    spec[1].n_files = 0;
    ck_assert_int_eq(ct_corpus_open_mix(spec, 2, CT_CORPUS_TEXT, NULL, &c), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "fr"));
    /* a pattern matching nothing names the language and the pattern */
    snprintf(bad, sizeof bad, "%s/fr-*.txt", dir);
    const char *fr[1] = {bad};
    spec[1] = (ct_corpus_lang_spec){"fr", fr, 1, 1};
    ck_assert_int_eq(ct_corpus_open_mix(spec, 2, CT_CORPUS_TEXT, NULL, &c), CT_ENOTFOUND);
    ck_assert_msg(strstr(ct_error_message(), "language fr") && strstr(ct_error_message(), "fr-*.txt"), "%s",
                  ct_error_message());
    ck_assert_ptr_null(c);
    /* a bad document in one language: the error names its file and line */
    snprintf(bad, sizeof bad, "%s/fr-0.txt", dir);
    FILE *f = fopen(bad, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("bon\n\xff\xfe\n", f);
    fclose(f);
    ck_assert_int_eq(ct_corpus_open_mix(spec, 2, CT_CORPUS_TEXT, NULL, &c), 0);
    const char *text;
    size_t len;
    int rc, n = 0;
    while ((rc = ct_corpus_next(c, &text, &len)) == 1)
        n++;
    ck_assert_int_eq(rc, CT_EINVAL);
    ck_assert_int_eq(n, 3); /* en 0, fr 0, en 1; then fr's second line */
    ck_assert_msg(strstr(ct_error_message(), "fr-0.txt:2"), "%s", ct_error_message());
    ck_assert_int_eq(ct_corpus_next(c, &text, &len), 0); /* it stays at the end */
    ct_corpus_close(c);
    ct_corpus_close(NULL);
    rm_tree(dir);
}
END_TEST

/* A single stream has no languages. */
START_TEST(test_single_stream_has_no_language)
{
    char dir[256];
    ct_test_tmpdir(dir, sizeof dir, "mix-one");
    write_lang_file(dir, "en", 0, 2);
    lang_files en;
    lang_glob(&en, dir, "en");
    ct_corpus *c;
    ck_assert_int_eq(ct_corpus_open(en.files, 1, CT_CORPUS_TEXT, NULL, &c), 0);
    const char *text;
    size_t len;
    ck_assert_int_eq(ct_corpus_next(c, &text, &len), 1);
    ck_assert_int_eq(ct_corpus_lang(c), -1);
    ck_assert_uint_eq(ct_corpus_n_langs(c), 0);
    ck_assert_ptr_null(ct_corpus_lang_name(c, 0));
    ct_corpus_close(c);
    rm_tree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("corpus");
    TCase *tc = tcase_create("corpus");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_format_parse);
    tcase_add_test(tc, test_text_lines);
    tcase_add_test(tc, test_compressed);
    tcase_add_test(tc, test_jsonl);
    tcase_add_test(tc, test_glob);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_shipped_corpora);
    tcase_add_test(tc, test_mix_matches_reference_and_reads_files_in_order);
    tcase_add_test(tc, test_mix_proportions_and_determinism);
    tcase_add_test(tc, test_mix_exhaustion);
    tcase_add_test(tc, test_mix_errors);
    tcase_add_test(tc, test_single_stream_has_no_language);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}
