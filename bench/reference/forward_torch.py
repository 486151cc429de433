#!/usr/bin/env python3
"""PyTorch CPU reference for `crosstime bench forward`: the same GPT-NeoX (Pythia)
shaped random model, written the way transformers' modeling_gpt_neox.py computes it
(eager attention over the full T x T scores with a causal mask, parallel residual,
partial rotary, erf GELU), full forward to the logits and the next-token CE.

Run with the same thread count as the C benchmark, and with OpenBLAS variables unset:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/reference/forward_torch.py \
      --threads 2 --hidden 512 --layers 6 --heads 8 --vocab 50304 --ctx 1024 --batch 4
On a GPU add --device cuda (fp32 without TF32, like the C CUDA backend; each forward
is bracketed by torch.cuda.synchronize). Prints key=value lines, the last one
tokens_per_s=N.
"""
import argparse
import time

import torch
import torch.nn.functional as F

from neox_torch import NeoX


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--stop-at", type=int, default=-1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    V, T, B = a.vocab, a.ctx, a.batch
    model = NeoX(V, a.hidden, a.layers, a.heads, T).to(dev)
    ids = torch.randint(0, V, (B, T)).to(dev)
    nb = a.layers if a.stop_at < 0 else a.stop_at + 1

    def forward():
        if a.stop_at >= 0:
            return model.residual(ids, nb)
        logits = model.logits(ids)
        return F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1), reduction="none")

    times, cpu = [], []
    with torch.no_grad():
        for it in range(a.iters + 1):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            forward()
            sync()
            if it > 0:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    best = min(times)
    print(f"impl=pytorch-{torch.__version__}")
    print(f"device={a.device}" + (f" ({torch.cuda.get_device_name()})" if a.device == "cuda" else ""))
    print(f"threads={torch.get_num_threads()}")
    print(f"stop_at={a.stop_at}")
    print(f"forward_s_best={best:.4f}")
    print(f"forward_s_mean={sum(times) / len(times):.4f}")
    print(f"cpu_s_best={min(cpu):.4f}")
    print(f"tokens_per_s={B * T / best:.0f}")


if __name__ == "__main__":
    main()
