/* Forward throughput of a Pythia-70M-shaped random model (hidden 512, 6 layers, 8 heads,
 * vocab 50304, context 1024, batch 4): the full forward to the logits, then stopping
 * after block 3, each with the machine's SGEMM peak and the achieved FLOP/s. Any
 * arguments are passed to `crosstime bench forward` instead (e.g. --device cuda).
 * Compare with bench/reference/forward_torch.py at the same thread count. */
#include <stdio.h>

int ct_cmd_bench_forward(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc > 1)
        return ct_cmd_bench_forward(argc, argv);
    char *full[] = {"forward", "--hidden", "512", "--layers", "6", "--heads", "8", "--vocab",
                    "50304", "--ctx", "1024", "--batch", "4", "--iters", "5"};
    char *stop[] = {"forward", "--hidden", "512", "--layers", "6", "--heads", "8", "--vocab",
                    "50304", "--ctx", "1024", "--batch", "4", "--iters", "5", "--stop-at", "3"};
    printf("# full forward\n");
    fflush(stdout);
    int rc = ct_cmd_bench_forward((int)(sizeof full / sizeof *full), full);
    printf("# stop after block 3\n");
    fflush(stdout);
    return rc ? rc : ct_cmd_bench_forward((int)(sizeof stop / sizeof *stop), stop);
}
