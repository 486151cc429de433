/* `crosstime bench crosscoder`: training throughput of the crosscoder on synthetic rows.
 * Prints key=value lines, the last being rows_per_s=N. */
#include "common/error.h"
#include "crosscoder/bench.h"
#include "crosscoder/crosscoder.h"
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ct_cmd_bench_crosscoder(int argc, char **argv);

static const char *usage =
    "usage: crosstime bench crosscoder [--type l1|batchtopk] [--m M] [--d D] [--h H]\n"
    "         [--batch B] [--steps N] [--density P] [--threads N] [--device cpu|cuda]\n"
    "         [--path auto|dense|sparse] [--seed S]\n"
    "Trains on N(0,1) rows from the paper's init with b_enc set so a fraction P of\n"
    "latents is active, and prints key=value lines ending with rows_per_s=N.\n"
    "--device cuda trains on the GPU (either model and path; needs a CUDA build).\n";

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int ct_cmd_bench_crosscoder(int argc, char **argv)
{
    ct_cc_bench_opts o = CT_CC_BENCH_OPTS_INIT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "crosstime bench crosscoder: unexpected or incomplete argument '%s'\n%s", a, usage);
            return 2;
        }
        const char *v = argv[++i];
        long n;
        int bad = 0;
        if (!strcmp(a, "--type")) {
            if (!strcmp(v, "l1"))
                o.type = CT_CC_L1;
            else if (!strcmp(v, "batchtopk"))
                o.type = CT_CC_BATCHTOPK;
            else
                bad = 1;
        } else if (!strcmp(a, "--m")) {
            bad = parse_long(v, 2, 64, &n) || ((o.M = (int)n), 0);
        } else if (!strcmp(a, "--d")) {
            bad = parse_long(v, 1, 1 << 20, &n) || ((o.d = (int)n), 0);
        } else if (!strcmp(a, "--h")) {
            bad = parse_long(v, 1, 1 << 24, &n) || ((o.H = (int)n), 0);
        } else if (!strcmp(a, "--batch")) {
            bad = parse_long(v, 1, 1 << 20, &n) || ((o.batch = (int)n), 0);
        } else if (!strcmp(a, "--steps")) {
            bad = parse_long(v, 1, 1000000, &n) || ((o.steps = n), 0);
        } else if (!strcmp(a, "--threads")) {
            bad = parse_long(v, 1, 1024, &n) || ((o.threads = (int)n), 0);
        } else if (!strcmp(a, "--seed")) {
            bad = parse_long(v, 0, 0x7fffffffL, &n) || ((o.seed = (uint64_t)n), 0);
        } else if (!strcmp(a, "--density")) {
            char *end;
            o.density = strtod(v, &end);
            bad = !*v || *end || !(o.density > 0.0 && o.density <= 1.0);
        } else if (!strcmp(a, "--device")) {
            ct_device dev;
            bad = ct_device_parse(v, &dev) != 0;
            o.device = (int)dev;
        } else if (!strcmp(a, "--path")) {
            if (!strcmp(v, "auto"))
                o.path = CT_CC_PATH_AUTO;
            else if (!strcmp(v, "dense"))
                o.path = CT_CC_PATH_DENSE;
            else if (!strcmp(v, "sparse"))
                o.path = CT_CC_PATH_SPARSE;
            else
                bad = 1;
        } else {
            fprintf(stderr, "crosstime bench crosscoder: unknown option '%s'\n%s", a, usage);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "crosstime bench crosscoder: bad value '%s' for %s\n%s", v, a, usage);
            return 2;
        }
    }
    if (ct_cc_bench_run(&o, stdout, NULL)) {
        fprintf(stderr, "crosstime: %s\n", ct_error_message());
        return 1;
    }
    return 0;
}
