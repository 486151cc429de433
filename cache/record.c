/* Entry records: the caller's JSON plus the fields the cache owns, stored as
 * compact JSON text with sorted keys. */
#include "cache/cache_internal.h"
#include "common/error.h"
#include "common/sha256.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void cache_chunk_key(const uint8_t id[CACHE_ID_LEN], uint64_t index, uint8_t out[CACHE_CHUNK_KEY_LEN])
{
    memcpy(out, id, CACHE_ID_LEN);
    /* Big-endian so that LMDB's byte order keeps a blob's chunks adjacent and in order. */
    for (int i = 0; i < 8; i++)
        out[CACHE_ID_LEN + i] = (uint8_t)(index >> (56 - 8 * i));
}

void cache_iso_time(char buf[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cache_key_hex(const uint8_t key[CT_KEY_LEN], char hex[2 * CT_KEY_LEN + 1])
{
    ct_hex_encode(key, CT_KEY_LEN, hex);
}

static int get_u64(const json_t *obj, const char *field, uint64_t *out)
{
    const json_t *v = json_object_get(obj, field);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int cache_record_parse(ct_cache *c, const uint8_t key[CT_KEY_LEN], const MDB_val *val, json_t **rec,
                       cache_blob_info *bi)
{
    char hex[2 * CT_KEY_LEN + 1];
    cache_key_hex(key, hex);
    json_error_t err;
    json_t *r = json_loadb(val->mv_data, val->mv_size, JSON_REJECT_DUPLICATES, &err);
    if (!r)
        return ct_error_set(CT_ECORRUPT, "%s: entry %s: record is not valid JSON (%s at byte %d)",
                            c->dir, hex, err.text, err.position);
    int rc = 0;
    const json_t *cache = json_object_get(r, "cache"), *blob = json_object_get(r, "blob");
    const json_t *fmt = json_object_get(cache, "format");
    if (!json_is_object(r) || !json_is_object(cache) || !json_is_integer(fmt)) {
        rc = ct_error_set(CT_ECORRUPT, "%s: entry %s: record lacks the cache's \"cache.format\" field",
                          c->dir, hex);
        goto out;
    }
    if (json_integer_value(fmt) != CT_CACHE_FORMAT) {
        rc = ct_error_set(CT_EFORMAT, "%s: entry %s: record format %lld is not supported (this build reads format %d)",
                          c->dir, hex, (long long)json_integer_value(fmt), CT_CACHE_FORMAT);
        goto out;
    }
    cache_blob_info b;
    const char *sha = json_string_value(json_object_get(blob, "sha256"));
    const char *id = json_string_value(json_object_get(blob, "id"));
    if (!json_is_object(blob) || get_u64(blob, "size", &b.size) || get_u64(blob, "chunks", &b.chunks) ||
        get_u64(blob, "chunk_size", &b.chunk_size) || !sha || !id ||
        strlen(sha) != 2 * sizeof b.sha256 || strlen(id) != 2 * CACHE_ID_LEN) {
        rc = ct_error_set(CT_ECORRUPT, "%s: entry %s: record has a missing or malformed \"blob\" field",
                          c->dir, hex);
        goto out;
    }
    if (ct_hex_decode(sha, b.sha256, sizeof b.sha256) || ct_hex_decode(id, b.id, CACHE_ID_LEN)) {
        rc = ct_error_set(CT_ECORRUPT, "%s: entry %s: record's blob digest or id is not hex", c->dir, hex);
        goto out;
    }
    if (b.chunk_size == 0 || b.chunk_size > CACHE_MAX_CHUNK ||
        b.chunks != b.size / b.chunk_size + (b.size % b.chunk_size != 0)) {
        rc = ct_error_set(CT_ECORRUPT, "%s: entry %s: record's blob size %llu, chunk size %llu and "
                          "chunk count %llu disagree", c->dir, hex, (unsigned long long)b.size,
                          (unsigned long long)b.chunk_size, (unsigned long long)b.chunks);
        goto out;
    }
    if (bi)
        *bi = b;
out:
    if (rc || !rec)
        json_decref(r);
    else
        *rec = r;
    return rc;
}

int cache_record_build(const json_t *user, const cache_blob_info *bi, char **text, size_t *len)
{
    if (user && !json_is_object(user))
        return ct_error_set(CT_EINVAL, "cache record must be a JSON object");
    json_t *r = user ? json_deep_copy(user) : json_object();
    char sha[2 * 32 + 1], id[2 * CACHE_ID_LEN + 1], when[32];
    ct_hex_encode(bi->sha256, sizeof bi->sha256, sha);
    ct_hex_encode(bi->id, CACHE_ID_LEN, id);
    cache_iso_time(when);
    json_t *blob = json_pack("{s:I, s:I, s:I, s:s, s:s}", "size", (json_int_t)bi->size, "chunks",
                             (json_int_t)bi->chunks, "chunk_size", (json_int_t)bi->chunk_size,
                             "sha256", sha, "id", id);
    json_t *cache = json_pack("{s:i, s:s}", "format", CT_CACHE_FORMAT, "created", when);
    if (!r || !blob || !cache) {
        json_decref(r);
        json_decref(blob);
        json_decref(cache);
        return ct_error_set(CT_ENOMEM, "out of memory building a cache record");
    }
    /* The _new setters take the reference even when they fail. */
    int e1 = json_object_set_new(r, "blob", blob);
    int e2 = json_object_set_new(r, "cache", cache);
    if (e1 || e2) {
        json_decref(r);
        return ct_error_set(CT_ENOMEM, "out of memory building a cache record");
    }
    *text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(r);
    if (!*text)
        return ct_error_set(CT_EINVAL, "cache record cannot be serialised as JSON");
    *len = strlen(*text);
    return 0;
}
