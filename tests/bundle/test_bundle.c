/* Bundles end to end through the CLI on the test-only toy steps: determinism,
 * round trips, partial bundles and roots, refusal of every unsafe member type
 * (hostile archives are built here with libarchive), and verify. */
#include "common/sha256.h"
#include "tests/support/cli.h"
#include "tests/support/testutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <sys/stat.h>

static char out[1 << 16];

static const char toy_recipe[] = "name: toy-bundle\n"
                                 "toy:\n"
                                 "  inputs: [alpha, beta, gamma]\n"
                                 "  rounds: 2\n";

typedef struct {
    char dir[PATH_MAX], cache[PATH_MAX + 16], recipe[PATH_MAX + 16];
} env;

static void setup(env *e, const char *tag)
{
    ct_test_tmpdir(e->dir, sizeof e->dir, tag);
    snprintf(e->cache, sizeof e->cache, "%s/cache", e->dir);
    snprintf(e->recipe, sizeof e->recipe, "%s/toy.yaml", e->dir);
    FILE *f = fopen(e->recipe, "w");
    ck_assert_ptr_nonnull(f);
    fputs(toy_recipe, f);
    fclose(f);
    unsetenv("CT_TOY_WITNESS");
    int rc = ct_cli(out, sizeof out, "run %s --cache %s -q", e->recipe, e->cache);
    ck_assert_msg(rc == 0, "run failed: %s", out);
}

/* Removes a passing test's directory (a failing one stops before, and keeps it). */
static void done(const env *e)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *path_in(const env *e, const char *name)
{
    static char buf[8][PATH_MAX + 64];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, PATH_MAX + 64, "%s/%s", e->dir, name);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* `cache ls --json` as a sorted text of "key sha256" lines, so two caches compare
 * by content whatever their creation times. */
static char *entries_of(const char *cache)
{
    static char lsout[1 << 16];
    int rc = ct_cli(lsout, sizeof lsout, "cache ls --json --cache %s", cache);
    ck_assert_msg(rc == 0, "%s", lsout);
    char *res = calloc(1, 1 << 16);
    size_t len = 0;
    for (char *line = strtok(lsout, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", line);
        const char *k = json_string_value(json_object_get(j, "key"));
        const char *sha = json_string_value(json_object_get(json_object_get(json_object_get(j, "record"), "blob"),
                                                            "sha256"));
        ck_assert_ptr_nonnull(k);
        ck_assert_ptr_nonnull(sha);
        len += (size_t)snprintf(res + len, (1 << 16) - len, "%s %s\n", k, sha);
        json_decref(j);
    }
    return res; /* ls lists in key order */
}

static int count_entries(const char *cache)
{
    char *e = entries_of(cache);
    int n = 0;
    for (char *p = e; *p; p++)
        n += *p == '\n';
    free(e);
    return n;
}

/* The key prefix of `label` in `crosstime plan` output. */
static void key_of(const env *e, const char *cache, const char *label, char key[13])
{
    static char plan[1 << 16];
    ck_assert_int_eq(ct_cli(plan, sizeof plan, "plan %s --cache %s", e->recipe, cache), 0);
    for (char *line = strtok(plan, "\n"); line; line = strtok(NULL, "\n")) {
        char st[16], k[32], lab[256];
        if (sscanf(line, "%15s %31s %255s", st, k, lab) == 3 && strcmp(lab, label) == 0) {
            snprintf(key, 13, "%s", k);
            return;
        }
    }
    ck_abort_msg("no step %s in the plan", label);
}

/* --- archives built in the test ----------------------------------------------------- */

typedef struct {
    char name[256];
    char *data;
    size_t len;
    unsigned type;   /* AE_IF* */
    char link[256];  /* symlink target or hard link name */
} member;

typedef struct {
    member m[64];
    int n;
} arc;

static void arc_load(const char *path, arc *a)
{
    memset(a, 0, sizeof *a);
    struct archive *r = archive_read_new();
    archive_read_support_filter_all(r);
    archive_read_support_format_all(r);
    ck_assert_int_eq(archive_read_open_filename(r, path, 1 << 16), ARCHIVE_OK);
    struct archive_entry *e;
    while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
        ck_assert_int_lt(a->n, 64);
        member *m = &a->m[a->n++];
        snprintf(m->name, sizeof m->name, "%s", archive_entry_pathname(e));
        m->type = AE_IFREG;
        m->len = (size_t)archive_entry_size(e);
        m->data = malloc(m->len + 1);
        ck_assert_int_eq(archive_read_data(r, m->data, m->len), (la_ssize_t)m->len);
        m->data[m->len] = '\0';
    }
    archive_read_free(r);
}

static member *arc_find(arc *a, const char *name)
{
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->m[i].name, name) == 0)
            return &a->m[i];
    ck_abort_msg("no member %s", name);
    return NULL;
}

static member *arc_add(arc *a, const char *name, const char *data, unsigned type, const char *link)
{
    ck_assert_int_lt(a->n, 64);
    member *m = &a->m[a->n++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->data = strdup(data ? data : "");
    m->len = strlen(m->data);
    m->type = type;
    if (link)
        snprintf(m->link, sizeof m->link, "%s", link);
    return m;
}

static void arc_set(member *m, const char *data, size_t len)
{
    free(m->data);
    m->data = malloc(len + 1);
    memcpy(m->data, data, len);
    m->data[len] = '\0';
    m->len = len;
}

static void arc_save(const char *path, arc *a)
{
    struct archive *w = archive_write_new();
    archive_write_set_format_pax_restricted(w);
    archive_write_add_filter_zstd(w);
    ck_assert_int_eq(archive_write_open_filename(w, path), ARCHIVE_OK);
    for (int i = 0; i < a->n; i++) {
        member *m = &a->m[i];
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m->name);
        archive_entry_set_perm(e, 0644);
        if (m->type == AE_IFREG && m->link[0]) { /* hard link */
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, m->link);
            archive_entry_set_size(e, 0);
        } else {
            archive_entry_set_filetype(e, m->type);
            archive_entry_set_size(e, m->type == AE_IFREG ? (la_int64_t)m->len : 0);
            if (m->type == AE_IFLNK)
                archive_entry_set_symlink(e, m->link);
            if (m->type == AE_IFCHR)
                archive_entry_set_rdev(e, 0x0103);
        }
        ck_assert_int_eq(archive_write_header(w, e), ARCHIVE_OK);
        if (m->type == AE_IFREG && !m->link[0] && m->len)
            ck_assert_int_eq(archive_write_data(w, m->data, m->len), (la_ssize_t)m->len);
        archive_entry_free(e);
    }
    ck_assert_int_eq(archive_write_close(w), ARCHIVE_OK);
    archive_write_free(w);
}

static void arc_free(arc *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->m[i].data);
    a->n = 0;
}

/* Rewrites the manifest through `edit` (a jansson tree). */
static void edit_manifest(arc *a, void (*edit)(json_t *steps, void *user), void *user)
{
    member *m = arc_find(a, "manifest.json");
    json_t *j = json_loads(m->data, 0, NULL);
    ck_assert_ptr_nonnull(j);
    edit(json_object_get(j, "steps"), user);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    arc_set(m, text, strlen(text));
    free(text);
    json_decref(j);
}

static json_t *step_named(json_t *steps, const char *label)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s) if (strcmp(json_string_value(json_object_get(s, "label")), label) == 0)
        return s;
    ck_abort_msg("no step %s in the manifest", label);
    return NULL;
}

/* --- determinism and round trips ------------------------------------------------------ */

START_TEST(export_is_deterministic)
{
    env e;
    setup(&e, "bdet");
    const char *with[] = {"", "--with artifacts"};
    for (int w = 0; w < 2; w++) {
        char *b1 = path_in(&e, "b1.tar.zst"), *b2 = path_in(&e, "b2.tar.zst"), *b3 = path_in(&e, "b3.tar.zst");
        char *c2 = path_in(&e, w ? "c2w" : "c2");
        ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s %s", e.recipe, b1, e.cache,
                                with[w]), 0);
        sleep(1); /* a clock that leaked into the archive would show now */
        ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s %s", e.recipe, b2, e.cache,
                                with[w]), 0);
        ck_assert_msg(same_file(b1, b2), "two exports of one cache differ (%s)", with[w]);
        if (!w)
            continue;
        /* through another cache: import, export again (with every artifact carried, the
         * other cache holds every entry; a results-only bundle re-exports its other
         * steps as absent, since a cache holds no record without its artifact) */
        int rc = ct_cli(out, sizeof out, "bundle import %s --cache %s", b1, c2);
        ck_assert_msg(rc == 0, "%s", out);
        rc = ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s %s", e.recipe, b3, c2, with[w]);
        ck_assert_msg(rc == 0, "%s", out);
        ck_assert_msg(same_file(b1, b3), "export after re-import differs (%s)", with[w]);
    }
    /* the archive is what the format promises: sorted, mtime 0, owner 0, mode 0644 */
    struct archive *r = archive_read_new();
    archive_read_support_filter_all(r);
    archive_read_support_format_all(r);
    ck_assert_int_eq(archive_read_open_filename(r, path_in(&e, "b3.tar.zst"), 1 << 16), ARCHIVE_OK);
    ck_assert_int_eq(archive_filter_code(r, 0), ARCHIVE_FILTER_ZSTD);
    struct archive_entry *ae;
    char prev[256] = "";
    int n = 0;
    while (archive_read_next_header(r, &ae) == ARCHIVE_OK) {
        ck_assert_msg(strcmp(prev, archive_entry_pathname(ae)) < 0, "members not sorted");
        snprintf(prev, sizeof prev, "%s", archive_entry_pathname(ae));
        ck_assert_int_eq(archive_entry_mtime(ae), 0);
        ck_assert_int_eq(archive_entry_uid(ae), 0);
        ck_assert_int_eq(archive_entry_gid(ae), 0);
        ck_assert_int_eq(archive_entry_perm(ae), 0644);
        ck_assert_int_eq(archive_entry_filetype(ae), AE_IFREG);
        n++;
    }
    archive_read_free(r);
    ck_assert_int_eq(n, 9); /* recipe, manifest, 1 result, 6 artifacts */
    done(&e);
}
END_TEST

START_TEST(import_round_trip)
{
    env e;
    setup(&e, "brt");
    char *b = path_in(&e, "b.tar.zst"), *c2 = path_in(&e, "c2");
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s --with artifacts", e.recipe, b,
                            e.cache), 0);
    int rc = ct_cli(out, sizeof out, "bundle import %s --cache %s", b, c2);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "7 artifacts, 7 imported, 0 already present"), "%s", out);
    /* same keys and blob digests, the plan manifest included */
    char *a = entries_of(e.cache), *c = entries_of(c2);
    ck_assert_str_eq(a, c);
    ck_assert_int_eq(count_entries(c2), 8);
    free(a);
    free(c);
    char k1[13], k2[13];
    key_of(&e, e.cache, "toy/join", k1);
    key_of(&e, c2, "toy/join", k2);
    ck_assert_str_eq(k1, k2);
    char join1[256], join2[256];
    ck_assert_int_eq(ct_cli(join1, sizeof join1, "cache cat %s --cache %s", k1, e.cache), 0);
    ck_assert_int_eq(ct_cli(join2, sizeof join2, "cache cat %s --cache %s", k2, c2), 0);
    ck_assert_str_eq(join1, join2);
    ck_assert_str_eq(join2, "ALPHA\nBETA\nGAMMA\n");
    ck_assert_int_eq(ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, c2), 0);
    ck_assert_msg(strstr(out, "7 steps: 7 cached, 0 to run"), "%s", out);
    /* the root protects what was imported */
    ck_assert_int_eq(ct_cli(out, sizeof out, "cache gc --cache %s", c2), 0);
    ck_assert_msg(strstr(out, "removed 0 entries"), "%s", out);
    ck_assert_int_eq(count_entries(c2), 8);
    /* importing again changes nothing */
    rc = ct_cli(out, sizeof out, "bundle import %s --cache %s", b, c2);
    ck_assert_msg(rc == 0 && strstr(out, "0 imported, 7 already present"), "%s", out);
    done(&e);
}
END_TEST

START_TEST(partial_bundles_merge_roots)
{
    env e;
    setup(&e, "bkeys");
    char *b0 = path_in(&e, "b0.tar.zst"), *b1 = path_in(&e, "b1.tar.zst"), *c2 = path_in(&e, "c2");
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s --keys toy/item/0", e.recipe, b0,
                            e.cache), 0);
    ck_assert_msg(strstr(out, "1 of 7 steps with records, 1 artifacts"), "%s", out);
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s --keys toy/round1/0,toy/join",
                            e.recipe, b1, e.cache), 0);
    ck_assert_msg(strstr(out, "2 of 7 steps with records, 2 artifacts"), "%s", out);
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle import %s --cache %s", b0, c2), 0);
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle import %s --cache %s", b1, c2), 0);
    /* 3 steps + the plan manifest, all kept by gc: the second import merged the root */
    ck_assert_int_eq(count_entries(c2), 4);
    ck_assert_int_eq(ct_cli(out, sizeof out, "cache gc --cache %s", c2), 0);
    ck_assert_msg(strstr(out, "removed 0 entries"), "%s", out);
    ck_assert_int_eq(count_entries(c2), 4);
    ck_assert_int_eq(ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, c2), 0);
    ck_assert_msg(strstr(out, "7 steps: 3 cached, 4 to run"), "%s", out);
    /* the plan explains the missing steps against the bundled plan manifest */
    ck_assert_msg(strstr(out, "same key as the last run, but not in the cache"), "%s", out);

    /* --keys needs cached steps with known labels */
    int rc = ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s --keys toy/nope", e.recipe, b0, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "--keys toy/nope: recipe toy-bundle has no step with that label"), "%s", out);
    rc = ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s --keys toy/item/1", e.recipe, b0, c2);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "step toy/item/1") && strstr(out, "is not in the cache"), "%s", out);
    done(&e);
}
END_TEST

START_TEST(absent_steps_are_listed)
{
    env e;
    setup(&e, "babs");
    const char *set = "--set toy.fail_at=toy/round1/2";
    char *b = path_in(&e, "b.tar.zst"), *c2 = path_in(&e, "c2");
    ct_cli(out, sizeof out, "run %s --cache %s -q %s", e.recipe, e.cache, set); /* fails on purpose */
    int rc = ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s %s --with artifacts", e.recipe, b,
                    e.cache, set);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "2 absent"), "%s", out);
    arc a;
    arc_load(b, &a);
    json_t *m = json_loads(arc_find(&a, "manifest.json")->data, 0, NULL);
    json_t *steps = json_object_get(m, "steps");
    ck_assert_str_eq(json_string_value(json_object_get(step_named(steps, "toy/join"), "status")), "absent");
    ck_assert_str_eq(json_string_value(json_object_get(step_named(steps, "toy/round1/2"), "status")), "absent");
    ck_assert_str_eq(json_string_value(json_object_get(step_named(steps, "toy/item/2"), "status")), "exported");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(m, "overrides"), 0)),
                     "toy.fail_at=toy/round1/2");
    json_decref(m);
    arc_free(&a);
    rc = ct_cli(out, sizeof out, "bundle import %s --cache %s", b, c2);
    ck_assert_msg(rc == 0 && strstr(out, "5 artifacts, 5 imported"), "%s", out);
    done(&e);
}
END_TEST

/* --- refusals ------------------------------------------------------------------------ */

typedef void (*mutator)(arc *a);

/* Shared by the refusal tests (built once, in the parent process): a good bundle, and
 * a target cache that already holds a run of another recipe. */
static env hostile;
static char target[PATH_MAX + 64], good[PATH_MAX + 64], *target_before, roots_before[1024];

static void hostile_setup(void)
{
    setup(&hostile, "bhostile");
    snprintf(good, sizeof good, "%s", path_in(&hostile, "good.tar.zst"));
    snprintf(target, sizeof target, "%s", path_in(&hostile, "target"));
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s --with artifacts",
                            hostile.recipe, good, hostile.cache), 0);
    char *other = path_in(&hostile, "other.yaml");
    FILE *f = fopen(other, "w");
    fputs("name: other\ntoy:\n  inputs: [x]\n  rounds: 1\n", f);
    fclose(f);
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s -q", other, target), 0);
    target_before = entries_of(target);
    ck_assert_int_eq(ct_cli(roots_before, sizeof roots_before, "cache roots --cache %s", target), 0);
}

static void hostile_teardown(void)
{
    free(target_before);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", hostile.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", hostile.dir);
}

/* Builds a hostile variant of the good bundle and checks that import refuses it
 * with `message`, leaving the target cache exactly as it was. */
static void refused(const char *tag, mutator mut, const char *message)
{
    char bad[PATH_MAX + 64];
    snprintf(bad, sizeof bad, "%s/%s.tar.zst", hostile.dir, tag);
    arc a;
    arc_load(good, &a);
    mut(&a);
    arc_save(bad, &a);
    arc_free(&a);

    int rc = ct_cli(out, sizeof out, "bundle import %s --cache %s", bad, target);
    ck_assert_msg(rc != 0, "hostile bundle (%s) was accepted: %s", tag, out);
    ck_assert_msg(strstr(out, message), "expected '%s' in: %s", message, out);
    ck_assert_msg(strstr(out, bad), "message does not name the bundle: %s", out);

    char *after = entries_of(target);
    ck_assert_str_eq(target_before, after);
    free(after);
    char roots_after[1024];
    ck_assert_int_eq(ct_cli(roots_after, sizeof roots_after, "cache roots --cache %s", target), 0);
    ck_assert_str_eq(roots_before, roots_after);
    ck_assert_int_eq(ct_cli(out, sizeof out, "cache stat --cache %s", target), 0);
    ck_assert_msg(strstr(out, "pending writes 0"), "%s", out);
    /* verify refuses it the same way */
    rc = ct_cli(out, sizeof out, "bundle verify %s --cache %s", bad, target);
    ck_assert_msg(rc != 0 && strstr(out, message), "verify: %s", out);
}

static void add_absolute(arc *a) { arc_add(a, "/tmp/crosstime-evil", "x", AE_IFREG, NULL); }
START_TEST(refuses_absolute_path) { refused("babspath", add_absolute, "member '/tmp/crosstime-evil': absolute path"); }
END_TEST

static void add_dotdot(arc *a) { arc_add(a, "results/../../evil", "x", AE_IFREG, NULL); }
START_TEST(refuses_dotdot) { refused("bdotdot", add_dotdot, "member 'results/../../evil': path contains '..'"); }
END_TEST

static void add_symlink(arc *a) { arc_add(a, "results/link", NULL, AE_IFLNK, "/etc/passwd"); }
START_TEST(refuses_symlink) { refused("bsym", add_symlink, "member 'results/link': symbolic link"); }
END_TEST

static void add_hardlink(arc *a) { arc_add(a, "results/hard", NULL, AE_IFREG, "recipe.yaml"); }
START_TEST(refuses_hardlink) { refused("bhard", add_hardlink, "member 'results/hard': hard link"); }
END_TEST

static void add_device(arc *a) { arc_add(a, "results/dev", NULL, AE_IFCHR, NULL); }
START_TEST(refuses_device) { refused("bdev", add_device, "member 'results/dev': device file"); }
END_TEST

static void add_fifo(arc *a) { arc_add(a, "results/fifo", NULL, AE_IFIFO, NULL); }
START_TEST(refuses_fifo) { refused("bfifo", add_fifo, "member 'results/fifo': fifo"); }
END_TEST

static void add_dir(arc *a) { arc_add(a, "results/toy", NULL, AE_IFDIR, NULL); }
START_TEST(refuses_directory) { refused("bdir", add_dir, "member 'results/toy/': directory where a file was expected"); }
END_TEST

static void add_duplicate(arc *a)
{
    /* the same name twice, the second with other content */
    arc_add(a, "results/toy/join", "EVIL\n", AE_IFREG, NULL);
}
START_TEST(refuses_duplicate) { refused("bdup", add_duplicate, "member 'results/toy/join': duplicate member name"); }
END_TEST

static void tamper_blob(arc *a)
{
    member *m = arc_find(a, "results/toy/join");
    m->data[0] = 'X'; /* same size, other bytes */
}
START_TEST(refuses_digest_mismatch) { refused("bdigest", tamper_blob, "member 'results/toy/join': digest mismatch"); }
END_TEST

static void change_text(json_t *steps, void *user)
{
    (void)user;
    json_t *s = step_named(steps, "toy/item/0");
    json_object_set_new(json_object_get(json_object_get(s, "material"), "params"), "text", json_string("omega"));
    json_object_set_new(json_object_get(json_object_get(json_object_get(s, "record"), "material"), "params"),
                        "text", json_string("omega"));
}
static void tamper_material(arc *a) { edit_manifest(a, change_text, NULL); }
START_TEST(refuses_key_mismatch) { refused("bkey", tamper_material, "key mismatch: step 'toy/item/0'"); }
END_TEST

static void break_manifest(arc *a)
{
    member *m = arc_find(a, "manifest.json");
    arc_set(m, "{\"format\": \"crosstime-bundle\", \"steps\": [", 41);
}
START_TEST(refuses_unparsable_manifest) { refused("bjson", break_manifest, "member 'manifest.json': not valid JSON"); }
END_TEST

static void add_unknown(arc *a) { arc_add(a, "results/extra.csv", "a,b\n", AE_IFREG, NULL); }
START_TEST(refuses_unknown_member) { refused("bunk", add_unknown, "member 'results/extra.csv': unknown member"); }
END_TEST

static void drop_member(arc *a)
{
    member *m = arc_find(a, "results/toy/join");
    free(m->data);
    *m = a->m[--a->n];
}
START_TEST(refuses_missing_member) { refused("bmiss", drop_member, "member 'results/toy/join' of step 'toy/join' is missing"); }
END_TEST

START_TEST(refuses_non_bundles)
{
    env e;
    setup(&e, "bnot");
    char *junk = path_in(&e, "junk.tar.zst");
    FILE *f = fopen(junk, "w");
    fputs("this is not an archive at all\n", f);
    fclose(f);
    int rc = ct_cli(out, sizeof out, "bundle import %s --cache %s", junk, path_in(&e, "t"));
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "not a readable bundle"), "%s", out);
    rc = ct_cli(out, sizeof out, "bundle import %s --cache %s", path_in(&e, "absent.tar.zst"), path_in(&e, "t"));
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "absent.tar.zst"), "%s", out);
    done(&e);
}
END_TEST

/* --- verify -------------------------------------------------------------------------- */

START_TEST(verify_identical)
{
    env e;
    setup(&e, "bvid");
    char *b = path_in(&e, "b.tar.zst"), *bw = path_in(&e, "bw.tar.zst"), *empty = path_in(&e, "empty");
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s", e.recipe, b, e.cache), 0);
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s --with artifacts", e.recipe, bw,
                            e.cache), 0);
    /* inputs from the user's cache */
    int rc = ct_cli(out, sizeof out, "bundle verify %s --cache %s", b, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "identical") && strstr(out, "toy/join"), "%s", out);
    ck_assert_msg(strstr(out, "1 identical, 0 different, 0 not recomputable"), "%s", out);
    /* planned from a recipe file instead of the bundled text */
    rc = ct_cli(out, sizeof out, "bundle verify %s --cache %s --recipe %s", b, e.cache, e.recipe);
    ck_assert_msg(rc == 0 && strstr(out, "1 identical, 0 different, 0 not recomputable"), "%s", out);
    /* a recipe that plans other keys cannot vouch for the bundle */
    rc = ct_cli(out, sizeof out, "bundle verify %s --cache %s --recipe %s --set toy.transform=reverse", b,
                e.cache, e.recipe);
    ck_assert_msg(rc == 0 && strstr(out, "the recipe plans key") && strstr(out, "1 not recomputable"), "%s", out);
    /* inputs from the bundle alone */
    rc = ct_cli(out, sizeof out, "bundle verify %s --cache %s", bw, empty);
    ck_assert_msg(rc == 0 && strstr(out, "1 identical, 0 different, 0 not recomputable"), "%s", out);
    /* no inputs anywhere */
    rc = ct_cli(out, sizeof out, "bundle verify %s --cache %s", b, empty);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "not recomputable") && strstr(out, "toy/round1/0, toy/round1/1, toy/round1/2"),
                  "%s", out);
    ck_assert_msg(strstr(out, "0 identical, 0 different, 1 not recomputable"), "%s", out);
    /* verify reads the user's cache and writes nothing to it */
    ck_assert_int_eq(count_entries(e.cache), 8);
    done(&e);
}
END_TEST

typedef struct {
    const char *text;
} new_result;

static void restate_join(json_t *steps, void *user)
{
    const char *text = ((new_result *)user)->text;
    uint8_t d[32];
    char hex[65];
    ct_sha256_buf(text, strlen(text), d);
    ct_hex_encode(d, 32, hex);
    json_t *blob = json_object_get(json_object_get(step_named(steps, "toy/join"), "record"), "blob");
    json_object_set_new(blob, "sha256", json_string(hex));
    json_object_set_new(blob, "size", json_integer((json_int_t)strlen(text)));
}

/* A crafted result with a consistent digest: import accepts it, verify catches it. */
static void check_different(const char *tag, const char *text, const char *expect)
{
    env e;
    setup(&e, tag);
    char *b = path_in(&e, "b.tar.zst"), *crafted = path_in(&e, "crafted.tar.zst");
    ck_assert_int_eq(ct_cli(out, sizeof out, "bundle export %s -o %s --cache %s --with artifacts", e.recipe, b,
                            e.cache), 0);
    arc a;
    arc_load(b, &a);
    arc_set(arc_find(&a, "results/toy/join"), text, strlen(text));
    new_result nr = {text};
    edit_manifest(&a, restate_join, &nr);
    arc_save(crafted, &a);
    arc_free(&a);
    int rc = ct_cli(out, sizeof out, "bundle import %s --cache %s", crafted, path_in(&e, "c2"));
    ck_assert_msg(rc == 0, "a consistent bundle must import: %s", out);
    rc = ct_cli(out, sizeof out, "bundle verify %s --cache %s", crafted, path_in(&e, "empty"));
    ck_assert_msg(rc == 1, "verify must fail on a different result (rc %d): %s", rc, out);
    ck_assert_msg(strstr(out, "DIFFERENT"), "%s", out);
    ck_assert_msg(strstr(out, expect), "expected '%s' in: %s", expect, out);
    ck_assert_msg(strstr(out, "0 identical, 1 different, 0 not recomputable"), "%s", out);
    done(&e);
}

START_TEST(verify_different_same_size)
{
    check_different("bvdiff", "ALPHA\nBETX\nGAMMA\n",
                    "1 of 3 lines differ, 1 bytes differ (bundle 17 bytes, recomputed 17 bytes)");
}
END_TEST

START_TEST(verify_different_extra_line)
{
    check_different("bvdiff2", "ALPHA\nBETA\nGAMMA\nDELTA\n",
                    "1 of 4 lines differ, 6 bytes differ (bundle 23 bytes, recomputed 17 bytes)");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bundle");
    TCase *t = tcase_create("bundle");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, export_is_deterministic);
    tcase_add_test(t, import_round_trip);
    tcase_add_test(t, partial_bundles_merge_roots);
    tcase_add_test(t, absent_steps_are_listed);
    tcase_add_test(t, refuses_non_bundles);
    tcase_add_test(t, verify_identical);
    tcase_add_test(t, verify_different_same_size);
    tcase_add_test(t, verify_different_extra_line);
    suite_add_tcase(s, t);
    TCase *h = tcase_create("refusals");
    tcase_set_timeout(h, 120);
    tcase_add_unchecked_fixture(h, hostile_setup, hostile_teardown);
    t = h;
    tcase_add_test(t, refuses_absolute_path);
    tcase_add_test(t, refuses_dotdot);
    tcase_add_test(t, refuses_symlink);
    tcase_add_test(t, refuses_hardlink);
    tcase_add_test(t, refuses_device);
    tcase_add_test(t, refuses_fifo);
    tcase_add_test(t, refuses_directory);
    tcase_add_test(t, refuses_duplicate);
    tcase_add_test(t, refuses_digest_mismatch);
    tcase_add_test(t, refuses_key_mismatch);
    tcase_add_test(t, refuses_unparsable_manifest);
    tcase_add_test(t, refuses_unknown_member);
    tcase_add_test(t, refuses_missing_member);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return ct_test_run(suite()); }
