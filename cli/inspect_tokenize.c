/* crosstime inspect tokenize --tokenizer PATH [--decode] [--skip-special]
 *
 * Encodes JSON strings read one per line on stdin into JSON arrays of token ids (no
 * special tokens added), or with --decode the reverse. Exit status: 0 ok, 1 error
 * (message on stderr), 2 usage. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/error.h"
#include "models/tokenizer/tokenizer.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: crosstime inspect tokenize --tokenizer PATH [--decode [--skip-special]]\n"
            "  reads one JSON string per line on stdin and writes one JSON array of token ids\n"
            "  per line; with --decode reads JSON arrays of ids and writes JSON strings.\n");
    return 2;
}

static int encode_line(const ct_tokenizer *tok, json_t *v, long lineno)
{
    if (!json_is_string(v)) {
        fprintf(stderr, "crosstime inspect tokenize: stdin line %ld: expected a JSON string\n", lineno);
        return 1;
    }
    int32_t *ids;
    size_t n;
    if (ct_tok_encode(tok, json_string_value(v), json_string_length(v), &ids, &n)) {
        fprintf(stderr, "crosstime inspect tokenize: stdin line %ld: %s\n", lineno, ct_error_message());
        return 1;
    }
    putchar('[');
    for (size_t i = 0; i < n; i++)
        printf(i ? ",%d" : "%d", ids[i]);
    puts("]");
    free(ids);
    return 0;
}

static int decode_line(const ct_tokenizer *tok, json_t *v, int skip_special, long lineno)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_array(v)) {
        fprintf(stderr, "crosstime inspect tokenize: stdin line %ld: expected a JSON array of ids\n", lineno);
        return 1;
    }
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "crosstime inspect tokenize: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX) {
            fprintf(stderr, "crosstime inspect tokenize: stdin line %ld: element %zu is not a token id\n",
                    lineno, i);
            free(ids);
            return 1;
        }
        ids[i] = (int32_t)json_integer_value(e);
    }
    char *text;
    size_t len;
    int rc = ct_tok_decode(tok, ids, n, skip_special, &text, &len);
    free(ids);
    if (rc) {
        fprintf(stderr, "crosstime inspect tokenize: stdin line %ld: %s\n", lineno, ct_error_message());
        return 1;
    }
    json_t *s = json_stringn(text, len);
    char *out = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    free(text);
    json_decref(s);
    if (!out) {
        fprintf(stderr, "crosstime inspect tokenize: stdin line %ld: cannot encode the text as JSON\n", lineno);
        return 1;
    }
    puts(out);
    free(out);
    return 0;
}

int ct_cmd_inspect_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    int decode = 0, skip_special = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
            path = argv[++i];
        else if (!strncmp(argv[i], "--tokenizer=", 12))
            path = argv[i] + 12;
        else if (!strcmp(argv[i], "--decode"))
            decode = 1;
        else if (!strcmp(argv[i], "--skip-special"))
            skip_special = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        } else
            return usage();
    }
    if (!path || (skip_special && !decode))
        return usage();
    ct_tokenizer *tok;
    if (ct_tok_load(path, &tok)) {
        fprintf(stderr, "crosstime inspect tokenize: %s\n", ct_error_message());
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    while (!rc && (got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        json_error_t je;
        json_t *v = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!v) {
            fprintf(stderr, "crosstime inspect tokenize: stdin line %ld: not JSON (%s)\n", lineno, je.text);
            rc = 1;
            break;
        }
        rc = decode ? decode_line(tok, v, skip_special, lineno) : encode_line(tok, v, lineno);
        json_decref(v);
    }
    free(line);
    ct_tok_free(tok);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "crosstime inspect tokenize: cannot write to stdout\n");
        rc = 1;
    }
    return rc;
}
