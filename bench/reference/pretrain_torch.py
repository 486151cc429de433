#!/usr/bin/env python3
"""PyTorch CPU reference for bench/pretrain.c: the same tiny-en-sized GPT-NeoX (hidden
256, 4 layers, 4 heads, vocab 4096, context 128, batch 32; parallel residual, rotary on
25% of each head, erf GELU, untied output head), written the way transformers'
modeling_gpt_neox.py computes it, taking full training steps on random tokens: mean
next-token cross-entropy, backward, clip_grad_norm_(1.0), AdamW (betas 0.9/0.95, eps
1e-8, weight decay 0.1 on 2-D weights only, as crosstime does).

Run with the same thread count as the C benchmark, and with OpenBLAS variables unset:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 ./build/bench/bench_pretrain
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 \
      bench/reference/pretrain_torch.py --threads 2
Prints key=value lines, the last one tokens_per_s=N.
"""
import argparse
import time

import torch
import torch.nn.functional as F

from neox_torch import NeoX


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    V, T, B = a.vocab, a.ctx, a.batch
    model = NeoX(V, a.hidden, a.layers, a.heads, T, init_std=0.02)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    tok = torch.randint(0, V, (B, T + 1))
    ids, targets = tok[:, :-1], tok[:, 1:]

    def step():
        logits = model.logits(ids)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    times = []
    for it in range(a.steps + 1):
        t0 = time.perf_counter()
        loss = step()
        if it > 0:  # the first step allocates the optimiser state
            times.append(time.perf_counter() - t0)
    mean = sum(times) / len(times)
    print(f"impl=pytorch-{torch.__version__}")
    print(f"threads={torch.get_num_threads()}")
    print(f"params={sum(p.numel() for p in model.parameters())}")
    print(f"loss={loss:.4f}")
    print(f"ms_per_step={1e3 * mean:.1f}")
    print(f"tokens_per_s={B * T / mean:.0f}")


if __name__ == "__main__":
    main()
