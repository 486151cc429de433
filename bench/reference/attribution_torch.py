#!/usr/bin/env python3
"""PyTorch CPU reference for bench_attribution: integrated gradients of METHOD §5 for a
Pythia-70M-shaped random checkpoint pair (hidden 512, 6 layers, 8 heads, vocab 50304)
at layer 3 with a random folded crosscoder, the way the paper's reference computes it:
for each checkpoint, the patched residual is built from the scaled latents with
autograd, the blocks above the layer run, and the gradient of
logit[bad] - logit[good] at the last position lands on the scaled latents.
The head runs at the last position only, as in crosstime.

Run with the same thread count as the C benchmark, and with OpenBLAS variables unset:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 \
      bench/reference/attribution_torch.py --threads 2
Prints key=value lines, the last one examples_per_s=N.
"""
import argparse
import time

import torch

from neox_torch import NeoX

HIDDEN, LAYERS, HEADS, VOCAB, LAYER = 512, 6, 8, 50304, 3


def upper(model, h):
    """The blocks above LAYER and the head at the last position."""
    for L in model.layers[LAYER + 1:]:
        h = model.block(L, h)
    return model.head(model.lnf(h[:, -1]))


def metric(logits, good, bad):
    rows = torch.arange(logits.shape[0])
    return logits[rows, bad] - logits[rows, good]


def ig_batch(models, W_enc, b_enc, W_dec, b_dec, ids, good, bad, steps, threshold):
    M, H = len(models), b_enc.shape[0]
    with torch.no_grad():
        xs = [m.residual(ids, LAYER + 1) for m in models]
        clean = [metric(upper(m, x), good, bad) for m, x in zip(models, xs)]
        f = torch.relu(torch.cat(xs, dim=-1) @ W_enc.reshape(M * HIDDEN, H) + b_enc)  # [B,T,H]
    ie, deltas = torch.zeros(M, H), []
    for m, model in enumerate(models):
        with torch.no_grad():
            xhat = f @ W_dec[:, m] + b_dec[m]
            res = xs[m] - xhat
            base = metric(upper(model, b_dec[m].expand_as(xs[m]).contiguous()), good, bad)
        grads = torch.zeros_like(f)
        for k in range(steps):
            alpha = k / steps
            fs = ((1 - alpha) * f).requires_grad_()
            h = fs @ W_dec[:, m] + b_dec[m] + (1 - alpha) * res
            metric(upper(model, h), good, bad).sum().backward()
            grads += fs.grad
        with torch.no_grad():
            e = grads / steps * (0 - f)
            e = torch.where(e.abs() > threshold, e, torch.zeros_like(e))
            ie[m] += e.mean(dim=1).sum(dim=0)  # mean over positions, sum over examples
        deltas.append(base - clean[m])  # the completeness target, as crosstime reports it
    return ie, deltas


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dict", type=int, default=4096)
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--prefix", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    T, H, M = a.prefix, a.dict, 2
    models = [NeoX(VOCAB, HIDDEN, LAYERS, HEADS, T).eval() for _ in range(M)]
    for mdl in models:
        for p in mdl.parameters():
            p.requires_grad_(False)
    W_enc = (torch.rand(M, HIDDEN, H) * 2 - 1) / (2 * HIDDEN) ** 0.5
    b_enc = torch.zeros(H)
    W_dec = (torch.rand(H, M, HIDDEN) * 2 - 1) * 0.01
    b_dec = (torch.rand(M, HIDDEN) * 2 - 1) * 0.1
    ids = torch.randint(0, VOCAB, (a.examples, T))
    good = torch.randint(0, VOCAB, (a.examples,))
    bad = (good + 1 + torch.randint(0, VOCAB - 1, (a.examples,))) % VOCAB

    def run(n):
        ie = torch.zeros(M, H)
        for e0 in range(0, n, a.batch):
            sl = slice(e0, min(n, e0 + a.batch))
            ie += ig_batch(models, W_enc, b_enc, W_dec, b_dec, ids[sl], good[sl], bad[sl], a.steps, 0.1)[0]
        return ie / n

    t0 = time.perf_counter()
    run(min(a.batch, a.examples))
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    ie = run(a.examples)
    t = time.perf_counter() - t0
    print(f"impl=pytorch-{torch.__version__}")
    print(f"threads={torch.get_num_threads()}")
    print(f"hidden={HIDDEN}\nlayers={LAYERS}\nheads={HEADS}\nvocab={VOCAB}\nlayer={LAYER}\ndict={H}")
    print(f"prefix={T}\nbatch={a.batch}\nsteps={a.steps}\nexamples={a.examples}")
    print(f"nonzero_ie={int((ie != 0).sum())}\nwarmup_s={warm:.3f}\nseconds={t:.3f}")
    print(f"examples_per_s={a.examples / t:.2f}")


if __name__ == "__main__":
    main()
