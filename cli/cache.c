/* `crosstime cache ls|stat|verify|gc|cat|roots`. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "pipeline/key.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Parses the common options plus the flags named in `flags` ("--dry-run", "--json");
 * positional arguments are returned in *arg (at most one). */
static int parse(int argc, char **argv, ct_cli_common *o, const char *const *flags, int *set,
                 const char **arg, const char *usage)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        int c = ct_cli_common_option(o, argc, argv, &i);
        if (c < 0)
            return ct_cli_usage(usage);
        if (c)
            continue;
        int matched = 0;
        for (int f = 0; flags && flags[f]; f++)
            if (strcmp(argv[i], flags[f]) == 0)
                set[f] = matched = 1;
        if (matched)
            continue;
        if (argv[i][0] == '-' || !arg || *arg)
            return ct_cli_usage(usage);
        *arg = argv[i];
    }
    return 0;
}

static void human(uint64_t bytes, char *buf, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static int print_entry(const uint8_t key[CT_KEY_LEN], json_t *record, void *user)
{
    int as_json = *(int *)user;
    char hex[CT_KEY_HEX_LEN + 1];
    ct_key_hex(key, hex);
    if (as_json) {
        json_t *line = json_pack("{s:s, s:O}", "key", hex, "record", record);
        json_dumpf(line, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        putchar('\n');
        json_decref(line);
        return 0;
    }
    json_t *m = json_object_get(record, "material");
    const char *kind = json_string_value(json_object_get(m, "kind"));
    const char *label = json_string_value(json_object_get(record, "label"));
    if (!label)
        label = json_string_value(json_object_get(m, "step"));
    char size[32];
    human((uint64_t)json_integer_value(json_object_get(json_object_get(record, "blob"), "size")), size,
          sizeof size);
    const char *created = json_string_value(json_object_get(json_object_get(record, "cache"), "created"));
    printf("%.12s  %-18s %10s  %-20s %s\n", hex, kind ? kind : "?", size, created ? created : "",
           label ? label : "");
    return 0;
}

int ct_cmd_cache_ls(int argc, char **argv)
{
    static const char usage[] = "usage: crosstime cache ls [--json] [--cache DIR]\n";
    static const char *const flags[] = {"--json", NULL};
    int set[1] = {0};
    ct_cli_common o;
    int rc = parse(argc, argv, &o, flags, set, NULL, usage);
    if (rc)
        return rc;
    ct_cache *cache;
    int status = 0;
    if (ct_cli_open_cache(&o, 1, &cache))
        status = ct_cli_fail();
    else {
        if (ct_cache_foreach(cache, print_entry, &set[0]))
            status = ct_cli_fail();
        ct_cache_close(cache);
    }
    ct_cli_common_free(&o);
    return status;
}

int ct_cmd_cache_stat(int argc, char **argv)
{
    static const char usage[] = "usage: crosstime cache stat [--cache DIR]\n";
    ct_cli_common o;
    int rc = parse(argc, argv, &o, NULL, NULL, NULL, usage);
    if (rc)
        return rc;
    ct_cache *cache;
    ct_cache_stats st;
    int status = 0;
    if (ct_cli_open_cache(&o, 1, &cache))
        status = ct_cli_fail();
    else {
        if (ct_cache_stat(cache, &st))
            status = ct_cli_fail();
        else {
            char blob[32], map[32], used[32];
            human(st.blob_bytes, blob, sizeof blob);
            human(st.map_size, map, sizeof map);
            human(st.map_used, used, sizeof used);
            printf("cache %s\nentries %llu\nblob bytes %s\nchunks %llu\npending writes %llu\n"
                   "roots %llu\nmap used %s of %s\n",
                   ct_cache_dir(cache), (unsigned long long)st.entries, blob,
                   (unsigned long long)st.chunks, (unsigned long long)st.pending_writes,
                   (unsigned long long)st.roots, used, map);
        }
        ct_cache_close(cache);
    }
    ct_cli_common_free(&o);
    return status;
}

static void report_corrupt(const uint8_t key[CT_KEY_LEN], const char *why, void *user)
{
    char hex[CT_KEY_HEX_LEN + 1];
    ct_key_hex(key, hex);
    printf("corrupt %s: %s%s\n", hex, why, *(int *)user ? "" : " (removed; a later run recomputes it)");
}

int ct_cmd_cache_verify(int argc, char **argv)
{
    static const char usage[] =
        "usage: crosstime cache verify [--dry-run] [--cache DIR]\n"
        "  Re-hashes every blob. Corrupt entries are reported and removed, so the next\n"
        "  run recomputes them (--dry-run only reports). Exit status 1 if any was corrupt.\n";
    static const char *const flags[] = {"--dry-run", NULL};
    int set[1] = {0};
    ct_cli_common o;
    int rc = parse(argc, argv, &o, flags, set, NULL, usage);
    if (rc)
        return rc;
    ct_cache *cache;
    uint64_t corrupt = 0;
    int status = 0;
    if (ct_cli_open_cache(&o, set[0], &cache))
        status = ct_cli_fail();
    else {
        if (ct_cache_verify(cache, !set[0], report_corrupt, &set[0], &corrupt))
            status = ct_cli_fail();
        else {
            printf("%llu corrupt entr%s\n", (unsigned long long)corrupt, corrupt == 1 ? "y" : "ies");
            status = corrupt ? 1 : 0;
        }
        ct_cache_close(cache);
    }
    ct_cli_common_free(&o);
    return status;
}

int ct_cmd_cache_gc(int argc, char **argv)
{
    static const char usage[] =
        "usage: crosstime cache gc [--dry-run] [--cache DIR]\n"
        "  Deletes entries that no named root (recipe:<name>, written by each run)\n"
        "  reaches, and the chunks of abandoned writes.\n";
    static const char *const flags[] = {"--dry-run", NULL};
    int set[1] = {0};
    ct_cli_common o;
    int rc = parse(argc, argv, &o, flags, set, NULL, usage);
    if (rc)
        return rc;
    ct_cache *cache;
    ct_cache_gc_stats st;
    int status = 0;
    if (ct_cli_open_cache(&o, 0, &cache))
        status = ct_cli_fail();
    else {
        if (ct_cache_gc(cache, set[0], &st))
            status = ct_cli_fail();
        else {
            char bytes[32];
            human(st.bytes_removed, bytes, sizeof bytes);
            printf("%s%llu entries (%s), %llu abandoned writes\n", set[0] ? "would remove " : "removed ",
                   (unsigned long long)st.entries_removed, bytes, (unsigned long long)st.abandoned_writes);
        }
        ct_cache_close(cache);
    }
    ct_cli_common_free(&o);
    return status;
}

int ct_cmd_cache_cat(int argc, char **argv)
{
    static const char usage[] = "usage: crosstime cache cat KEY-PREFIX [--cache DIR]\n";
    const char *prefix = NULL;
    ct_cli_common o;
    int rc = parse(argc, argv, &o, NULL, NULL, &prefix, usage);
    if (rc)
        return rc;
    if (!prefix)
        return ct_cli_usage(usage);
    ct_cache *cache;
    int status = 0;
    if (ct_cli_open_cache(&o, 1, &cache))
        status = ct_cli_fail();
    else {
        uint8_t key[CT_KEY_LEN];
        ct_blob_reader *r;
        if (ct_cache_resolve_prefix(cache, prefix, key) || ct_blob_reader_open(cache, key, &r)) {
            status = ct_cli_fail();
        } else {
            ct_blob_chunk chunk;
            int more;
            while ((more = ct_blob_next_chunk(r, &chunk)) > 0)
                if (fwrite(chunk.data, 1, chunk.len, stdout) != chunk.len)
                    break;
            if (more < 0)
                status = ct_cli_fail();
            ct_blob_reader_close(r);
        }
        ct_cache_close(cache);
    }
    ct_cli_common_free(&o);
    return status;
}

static int print_root(const char *name, size_t n_keys, void *user)
{
    printf("%-40s %zu keys\n", name, n_keys);
    return 0;
}

int ct_cmd_cache_roots(int argc, char **argv)
{
    static const char usage[] = "usage: crosstime cache roots [--cache DIR]\n";
    ct_cli_common o;
    int rc = parse(argc, argv, &o, NULL, NULL, NULL, usage);
    if (rc)
        return rc;
    ct_cache *cache;
    int status = 0;
    if (ct_cli_open_cache(&o, 1, &cache))
        status = ct_cli_fail();
    else {
        if (ct_cache_root_foreach(cache, print_root, NULL))
            status = ct_cli_fail();
        ct_cache_close(cache);
    }
    ct_cli_common_free(&o);
    return status;
}
