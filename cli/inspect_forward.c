/* `crosstime inspect forward`: runs a checkpoint on a list of token ids and writes the
 * residual at the output of every block (residual_L.npy, float32 [n_tokens, hidden],
 * before any final norm) and the logits (logits.npy, float32 [n_tokens, vocab]). */
#include "common/error.h"
#include "common/io.h"
#include "models/forward/model.h"
#include "models/forward/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: crosstime inspect forward --model DIR|hf:ORG/NAME[@REV] --ids 12,345,6789\n"
                    "       --out DIR [--device cpu|cuda]\n");
    return 2;
}

static int parse_ids(const char *s, int32_t **ids, int *n)
{
    int cap = 16, k = 0;
    int32_t *v = malloc(sizeof *v * cap);
    if (!v)
        return ct_error_set(CT_ENOMEM, "out of memory");
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX || (*end && *end != ',')) {
            free(v);
            return ct_error_set(CT_EINVAL, "--ids: '%s' is not a comma-separated list of "
                                "non-negative token ids", s);
        }
        if (k == cap) {
            int32_t *nv = realloc(v, sizeof *v * (cap *= 2));
            if (!nv) {
                free(v);
                return ct_error_set(CT_ENOMEM, "out of memory");
            }
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = *end ? end + 1 : end;
    }
    if (k == 0) {
        free(v);
        return ct_error_set(CT_EINVAL, "--ids: no token ids given");
    }
    *ids = v;
    *n = k;
    return 0;
}

int ct_cmd_inspect_forward(int argc, char **argv)
{
    const char *model = NULL, *ids_s = NULL, *outdir = NULL, *dev = "cpu";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(), 0;
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--model"))
            model = argv[++i];
        else if (!strcmp(argv[i], "--ids"))
            ids_s = argv[++i];
        else if (!strcmp(argv[i], "--out"))
            outdir = argv[++i];
        else if (!strcmp(argv[i], "--device"))
            dev = argv[++i];
        else
            return usage();
    }
    if (!model || !ids_s || !outdir)
        return usage();
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    int32_t *ids = NULL;
    int n = 0;
    ct_model *m = NULL;
    float **caps = NULL, *logits = NULL;
    int *layers = NULL, rc, L = 0;
    if ((rc = ct_device_parse(dev, &mo.device)) || (rc = parse_ids(ids_s, &ids, &n)) ||
        (rc = ct_mkdirs(outdir, 0755)) || (rc = ct_model_load(model, &mo, &m)))
        goto done;
    const ct_model_config *cfg = ct_model_get_config(m);
    L = cfg->n_layer;
    size_t C = (size_t)cfg->hidden, V = (size_t)cfg->vocab;
    caps = calloc((size_t)L, sizeof *caps);
    layers = malloc(sizeof *layers * L);
    logits = malloc(sizeof(float) * n * V);
    if (!caps || !layers || !logits) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto done;
    }
    for (int l = 0; l < L; l++) {
        layers[l] = l;
        if (!(caps[l] = malloc(sizeof(float) * n * C))) {
            rc = ct_error_set(CT_ENOMEM, "out of memory");
            goto done;
        }
    }
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = 1;
    a.seq_len = n;
    a.ids = ids;
    a.n_capture = L;
    a.capture_layers = layers;
    a.capture = caps;
    a.logits = logits;
    if ((rc = ct_model_forward(m, &a)))
        goto done;
    char path[4096];
    for (int l = 0; l < L && !rc; l++) {
        snprintf(path, sizeof path, "%s/residual_%d.npy", outdir, l);
        rc = ct_npy_write_f32(path, caps[l], 2, (int64_t[]){n, (int64_t)C});
    }
    snprintf(path, sizeof path, "%s/logits.npy", outdir);
    if (!rc)
        rc = ct_npy_write_f32(path, logits, 2, (int64_t[]){n, (int64_t)V});
    if (!rc)
        printf("wrote %d residual_L.npy [%d, %zu] and logits.npy [%d, %zu] to %s (%s)\n", L, n, C,
               n, V, outdir, ct_device_name(mo.device));
done:
    if (rc)
        fprintf(stderr, "crosstime inspect forward: %s\n", ct_error_message());
    for (int l = 0; caps && l < L; l++)
        free(caps[l]);
    free(caps);
    free(layers);
    free(logits);
    free(ids);
    ct_model_free(m);
    return rc ? 1 : 0;
}
