/* Checkpoint reading throughput on a synthetic safetensors file shaped like a 1B
 * model's layers: write (streamed, fsync'd), open (mmap + header validation),
 * widening every tensor to fp32, and the streamed SHA-256 a digest needs when the file
 * is not a hub-cache blob. Prints key=value lines.
 *
 *   build/bench/bench_ckpt_load [--mb 512] [--dtype bf16|f16|f32] [--dir /tmp] */
#include "common/sha256.h"
#include "common/progress.h"
#include "models/checkpoint/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    size_t mb = 512;
    const char *dts = "bf16", *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mb"))
            mb = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--dtype"))
            dts = argv[i + 1];
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
    }
    ct_dtype dt = !strcmp(dts, "f16") ? CT_DT_F16 : !strcmp(dts, "f32") ? CT_DT_F32 : CT_DT_BF16;
    size_t es = ct_dtype_size(dt);
    /* [8192, 2048] matrices (one MLP projection of Pythia-1B) until the budget is used */
    const int64_t shape[2] = {8192, 2048};
    size_t per = (size_t)(shape[0] * shape[1]) * es;
    size_t n = (mb << 20) / per ? (mb << 20) / per : 1;
    unsigned char *data = malloc(per);
    uint32_t x = 1;
    for (size_t i = 0; i < per; i += 2) { /* finite values in every format */
        x = x * 1664525u + 1013904223u;
        data[i] = (unsigned char)(x >> 24);
        data[i + 1] = (unsigned char)(0x3c + ((x >> 16) & 1));
    }
    ct_st_tensor *t = calloc(n, sizeof *t);
    char (*names)[32] = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "layers.%zu.weight", i);
        t[i] = (ct_st_tensor){names[i], dt, 2, shape, data};
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-ckpt-%ld.safetensors", dir, (long)getpid());
    double t0 = ct_seconds();
    if (ct_safetensors_write(path, t, n, NULL, NULL, 0)) {
        fprintf(stderr, "write failed\n");
        return 1;
    }
    double t1 = ct_seconds();
    ct_safetensors *st;
    if (ct_safetensors_open(path, &st)) {
        fprintf(stderr, "open failed\n");
        return 1;
    }
    double t2 = ct_seconds();
    float *out = malloc(per / es * sizeof(float));
    double checksum = 0;
    for (size_t i = 0; i < ct_safetensors_count(st); i++) {
        ct_tensor_view v;
        ct_safetensors_at(st, i, &v);
        ct_dtype_to_f32(v.dtype, v.data, v.numel, out);
        checksum += out[v.numel - 1];
    }
    double t3 = ct_seconds();
    ct_safetensors_close(st);
    uint8_t d[CT_SHA256_LEN];
    ct_sha256_file(path, d);
    double t4 = ct_seconds();
    unlink(path);
    double gb = (double)(n * per) / 1e9;
    printf("file_gb=%.3f tensors=%zu dtype=%s\n", gb, n, ct_dtype_name(dt));
    printf("write_gbps=%.2f\n", gb / (t1 - t0));
    printf("open_ms=%.2f\n", (t2 - t1) * 1e3);
    printf("to_f32_gbps_in=%.2f to_f32_melem_per_s=%.0f\n", gb / (t3 - t2),
           (double)(n * per / es) / (t3 - t2) / 1e6);
    printf("sha256_gbps=%.2f\n", gb / (t4 - t3));
    printf("checksum=%g\n", checksum);
    free(out);
    free(t);
    free(names);
    free(data);
    return 0;
}
