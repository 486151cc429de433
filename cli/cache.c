/* `crosstime cache ls|stat|verify|gc|cat|roots`. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "pipeline/key.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

static void report_corrupt(const uint8_t key[CT_KEY_LEN], const char *why, void *user)
{
    char hex[CT_KEY_HEX_LEN + 1];
    ct_key_hex(key, hex);
    printf("corrupt %s: %s%s\n", hex, why, *(int *)user ? "" : " (removed; a later run recomputes it)");
}

static int print_root(const char *name, size_t n_keys, void *user)
{
    printf("%-40s %zu keys\n", name, n_keys);
    return 0;
}

/* One `cache` subcommand: its usage, flags, whether it takes a KEY-PREFIX, how it opens
 * the cache, and what it does. Every action returns the exit status. */
typedef struct {
    const char *usage;
    const char *const *flags; /* NULL-terminated; set[i] tells whether flags[i] was given */
    int wants_arg;
    int read_only;            /* 1, 0, or 2: read-only when flags[0] (--dry-run) is given */
    int (*act)(ct_cache *cache, const int *set, const char *arg);
} cache_command;

static int run_cache_command(const cache_command *cmd, int argc, char **argv)
{
    int set[4] = {0};
    const char *arg = NULL;
    ct_cli_opt opts[5] = {{0}};
    for (int f = 0; cmd->flags && cmd->flags[f] && f < 4; f++)
        opts[f] = (ct_cli_opt){.name = cmd->flags[f], .flag = &set[f]};
    ct_cli_common o;
    if (ct_cli_parse(argc, argv, &o, opts, &arg, cmd->wants_arg))
        return ct_cli_usage(cmd->usage);
    if (cmd->wants_arg && !arg) {
        ct_cli_common_free(&o);
        return ct_cli_usage(cmd->usage);
    }
    ct_cache *cache;
    int status;
    if (ct_cli_open_cache(&o, cmd->read_only == 2 ? set[0] : cmd->read_only, &cache)) {
        status = ct_cli_fail();
    } else {
        status = cmd->act(cache, set, arg);
        ct_cache_close(cache);
    }
    ct_cli_common_free(&o);
    return status;
}

static int act_ls(ct_cache *cache, const int *set, const char *arg)
{
    int as_json = set[0];
    return ct_cache_foreach(cache, print_entry, &as_json) ? ct_cli_fail() : 0;
}

static int act_stat(ct_cache *cache, const int *set, const char *arg)
{
    ct_cache_stats st;
    if (ct_cache_stat(cache, &st))
        return ct_cli_fail();
    char blob[32], map[32], used[32];
    human(st.blob_bytes, blob, sizeof blob);
    human(st.map_size, map, sizeof map);
    human(st.map_used, used, sizeof used);
    printf("cache %s\nentries %llu\nblob bytes %s\nchunks %llu\npending writes %llu\n"
           "roots %llu\nmap used %s of %s\n",
           ct_cache_dir(cache), (unsigned long long)st.entries, blob, (unsigned long long)st.chunks,
           (unsigned long long)st.pending_writes, (unsigned long long)st.roots, used, map);
    return 0;
}

static int act_verify(ct_cache *cache, const int *set, const char *arg)
{
    uint64_t corrupt = 0;
    int dry_run = set[0];
    if (ct_cache_verify(cache, !dry_run, report_corrupt, &dry_run, &corrupt))
        return ct_cli_fail();
    printf("%llu corrupt entr%s\n", (unsigned long long)corrupt, corrupt == 1 ? "y" : "ies");
    return corrupt ? 1 : 0;
}

static int act_gc(ct_cache *cache, const int *set, const char *arg)
{
    ct_cache_gc_stats st;
    if (ct_cache_gc(cache, set[0], &st))
        return ct_cli_fail();
    char bytes[32];
    human(st.bytes_removed, bytes, sizeof bytes);
    printf("%s%llu entries (%s), %llu abandoned writes\n", set[0] ? "would remove " : "removed ",
           (unsigned long long)st.entries_removed, bytes, (unsigned long long)st.abandoned_writes);
    return 0;
}

static int act_cat(ct_cache *cache, const int *set, const char *prefix)
{
    uint8_t key[CT_KEY_LEN];
    ct_blob_reader *r;
    if (ct_cache_resolve_prefix(cache, prefix, key) || ct_blob_reader_open(cache, key, &r))
        return ct_cli_fail();
    ct_blob_chunk chunk;
    int more;
    while ((more = ct_blob_next_chunk(r, &chunk)) > 0)
        if (fwrite(chunk.data, 1, chunk.len, stdout) != chunk.len)
            break;
    int status = more < 0 ? ct_cli_fail() : 0;
    ct_blob_reader_close(r);
    return status;
}

static int act_roots(ct_cache *cache, const int *set, const char *arg)
{
    return ct_cache_root_foreach(cache, print_root, NULL) ? ct_cli_fail() : 0;
}

static const char *const json_flag[] = {"--json", NULL};
static const char *const dry_run_flag[] = {"--dry-run", NULL};

int ct_cmd_cache_ls(int argc, char **argv)
{
    static const cache_command cmd = {"usage: crosstime cache ls [--json] [--cache DIR]\n", json_flag, 0, 1,
                                      act_ls};
    return run_cache_command(&cmd, argc, argv);
}

int ct_cmd_cache_stat(int argc, char **argv)
{
    static const cache_command cmd = {"usage: crosstime cache stat [--cache DIR]\n", NULL, 0, 1, act_stat};
    return run_cache_command(&cmd, argc, argv);
}

int ct_cmd_cache_verify(int argc, char **argv)
{
    static const cache_command cmd = {
        "usage: crosstime cache verify [--dry-run] [--cache DIR]\n"
        "  Re-hashes every blob. Corrupt entries are reported and removed, so the next\n"
        "  run recomputes them (--dry-run only reports). Exit status 1 if any was corrupt.\n",
        dry_run_flag, 0, 2, act_verify};
    return run_cache_command(&cmd, argc, argv);
}

int ct_cmd_cache_gc(int argc, char **argv)
{
    static const cache_command cmd = {
        "usage: crosstime cache gc [--dry-run] [--cache DIR]\n"
        "  Deletes entries that no named root (recipe:<name>, written by each run)\n"
        "  reaches, and the chunks of abandoned writes.\n",
        dry_run_flag, 0, 0, act_gc};
    return run_cache_command(&cmd, argc, argv);
}

int ct_cmd_cache_cat(int argc, char **argv)
{
    static const cache_command cmd = {"usage: crosstime cache cat KEY-PREFIX [--cache DIR]\n", NULL, 1, 1,
                                      act_cat};
    return run_cache_command(&cmd, argc, argv);
}

int ct_cmd_cache_roots(int argc, char **argv)
{
    static const cache_command cmd = {"usage: crosstime cache roots [--cache DIR]\n", NULL, 0, 1, act_roots};
    return run_cache_command(&cmd, argc, argv);
}
