#!/usr/bin/env python3
"""PyTorch CPU reference for `crosstime bench forward`: the same GPT-NeoX (Pythia)
shaped random model, written the way transformers' modeling_gpt_neox.py computes it
(eager attention over the full T x T scores with a causal mask, parallel residual,
partial rotary, erf GELU), full forward to the logits and the next-token CE.

Run with the same thread count as the C benchmark, and with OpenBLAS variables unset:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/reference/forward_torch.py \
      --threads 2 --hidden 512 --layers 6 --heads 8 --vocab 50304 --ctx 1024 --batch 4
Prints key=value lines, the last one tokens_per_s=N.
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F


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
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    C, H, V, T, B = a.hidden, a.heads, a.vocab, a.ctx, a.batch
    hd, I = C // H, 4 * C
    rot = int(hd * 0.25)

    def lin(o, i, bias=True):
        m = torch.nn.Linear(i, o, bias=bias)
        return m

    emb = torch.nn.Embedding(V, C)
    layers = []
    for _ in range(a.layers):
        layers.append(dict(ln1=torch.nn.LayerNorm(C), ln2=torch.nn.LayerNorm(C), qkv=lin(3 * C, C),
                           dense=lin(C, C), fc=lin(I, C), proj=lin(C, I)))
    lnf = torch.nn.LayerNorm(C)
    head = lin(V, C, bias=False)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, rot, 2).float() / rot))
    freqs = torch.outer(torch.arange(T).float(), inv_freq)
    e = torch.cat((freqs, freqs), dim=-1)
    cos, sin = e.cos()[None, None], e.sin()[None, None]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))

    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def block(L, h):
        x = L["ln1"](h)
        qkv = L["qkv"](x).view(B, T, H, 3 * hd)
        q = qkv[..., :hd].permute(0, 2, 1, 3)
        k = qkv[..., hd:2 * hd].permute(0, 2, 1, 3)
        v = qkv[..., 2 * hd:].permute(0, 2, 1, 3)
        qr, qp = q[..., :rot], q[..., rot:]
        kr, kp = k[..., :rot], k[..., rot:]
        q = torch.cat((qr * cos + rotate_half(qr) * sin, qp), dim=-1)
        k = torch.cat((kr * cos + rotate_half(kr) * sin, kp), dim=-1)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        s = torch.where(mask, s, torch.tensor(torch.finfo(s.dtype).min))
        o = torch.matmul(torch.softmax(s, dim=-1), v).permute(0, 2, 1, 3).reshape(B, T, C)
        attn = L["dense"](o)
        mlp = L["proj"](F.gelu(L["fc"](L["ln2"](h))))
        return mlp + attn + h

    ids = torch.randint(0, V, (B, T))
    nb = a.layers if a.stop_at < 0 else a.stop_at + 1

    def forward():
        h = emb(ids)
        for L in layers[:nb]:
            h = block(L, h)
        if a.stop_at >= 0:
            return h
        logits = head(lnf(h))
        return F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1), reduction="none")

    times, cpu = [], []
    with torch.no_grad():
        for it in range(a.iters + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            forward()
            if it > 0:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    best = min(times)
    print(f"impl=pytorch-{torch.__version__}")
    print(f"threads={torch.get_num_threads()}")
    print(f"stop_at={a.stop_at}")
    print(f"forward_s_best={best:.4f}")
    print(f"forward_s_mean={sum(times) / len(times):.4f}")
    print(f"cpu_s_best={min(cpu):.4f}")
    print(f"tokens_per_s={B * T / best:.0f}")


if __name__ == "__main__":
    main()
