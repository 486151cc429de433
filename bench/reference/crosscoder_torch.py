#!/usr/bin/env python3
"""PyTorch CPU reference for bench/crosscoder_train.c: one L1 crosscoder training step
written the way the reference implementation writes it (dense einsums, decoder-norm
weighted L1, explained variance per step, Adam, clip_grad_norm_, LambdaLR), timed on
N(0,1) rows with b_enc set so that a fraction P of latents is active. With --type
batchtopk the step is the BatchTopK crosscoder's instead (the top k*B decoder-norm
scaled activations of the batch with k = 200, the final k that the C benchmark holds
fixed, no L1 term; no latent is dead in so short a run, so AuxK adds nothing).

Run with the same thread count as the C benchmark, with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset, e.g.:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python3 bench/reference/crosscoder_torch.py --m 2 --d 512 --h 4096 \
        --batch 1024 --steps 10 --density 0.02 --threads 2
On a GPU add --device cuda (fp32 matmuls without TF32, as the C benchmark's cuBLAS
path; timings bracketed by torch.cuda.synchronize). Prints key=value lines; the last is
rows_per_s=N.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CrossCoder(nn.Module):
    def __init__(self, n_models, d_in, d_hidden, dec_init_norm=0.08):
        super().__init__()
        self.W_enc = nn.Parameter(torch.empty(n_models, d_in, d_hidden))
        self.W_dec = nn.Parameter(torch.nn.init.normal_(torch.empty(d_hidden, n_models, d_in)))
        self.W_dec.data = self.W_dec.data / self.W_dec.data.norm(dim=-1, keepdim=True) * dec_init_norm
        self.W_enc.data = self.W_dec.data.clone().permute(1, 2, 0).contiguous()
        self.b_enc = nn.Parameter(torch.zeros(d_hidden))
        self.b_dec = nn.Parameter(torch.zeros(n_models, d_in))

    def encode(self, x):
        x_enc = torch.einsum("bnd,ndh->bh", x, self.W_enc)
        return F.relu(x_enc + self.b_enc)

    def decode(self, acts):
        return torch.einsum("bh,hnd->bnd", acts, self.W_dec) + self.b_dec

    def get_losses(self, x, k=0):
        acts = self.encode(x)
        if k > 0:
            scores = (acts * self.W_dec.norm(dim=-1).sum(dim=-1)[None, :]).flatten()
            keep = torch.zeros_like(scores)
            keep[scores.topk(min(k * x.shape[0], scores.numel()), sorted=False).indices] = 1.0
            acts = acts * keep.view_as(acts)
        x_rec = self.decode(acts)
        diff = x_rec.float() - x.float()
        l2_per_batch = diff.pow(2).sum(dim=(1, 2))
        l2_loss = l2_per_batch.mean()
        total_variance = (x - x.mean(0)).pow(2).sum(dim=(1, 2))
        explained_variance = 1 - l2_per_batch / total_variance
        decoder_norms = self.W_dec.norm(dim=-1)
        total_decoder_norm = decoder_norms.sum(dim=-1)
        l1_loss = (acts * total_decoder_norm[None, :]).sum(-1).mean(0)
        l0_loss = (acts > 0).float().sum(-1).mean()
        return l2_loss, l1_loss, l0_loss, explained_variance


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=2)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--h", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=124)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--type", choices=["l1", "batchtopk"], default="l1")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    # The paper initialises decoder rows to norm 0.08 for L1 and 1.0 for BatchTopK.
    cc = CrossCoder(a.m, a.d, a.h, 1.0 if a.type == "batchtopk" else 0.08).to(dev)
    rows = torch.randn(2 * a.batch, a.m, a.d).to(dev)
    with torch.no_grad():
        pre = torch.einsum("bnd,ndh->bh", rows[: a.batch], cc.W_enc)
        q = min(int((1.0 - a.density) * a.batch), a.batch - 1)
        cc.b_enc.copy_(-pre.sort(dim=0).values[q])
    total = a.steps + 1
    l1_coeff, lr = 2.0, 5e-5
    opt = torch.optim.Adam(cc.parameters(), lr=lr, betas=(0.9, 0.999))

    def lr_lambda(step):
        if step < 0.8 * total:
            return 1.0
        return 1.0 - (step - 0.8 * total) / (0.2 * total)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)

    def step(i):
        x = rows[(i % 2) * a.batch:(i % 2 + 1) * a.batch]
        if a.type == "batchtopk":
            l2, l1, l0, ev = cc.get_losses(x, 200)
            loss = l2
        else:
            l2, l1, l0, ev = cc.get_losses(x)
            coeff = l1_coeff * i / (0.05 * total) if i < 0.05 * total else l1_coeff
            loss = l2 + coeff * l1
        loss.backward()
        torch.nn.utils.clip_grad_norm_(cc.parameters(), max_norm=1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        return loss.item(), l0.item()

    sync()
    t0 = time.perf_counter()
    first, _ = step(0)
    sync()
    t1 = time.perf_counter()
    l0s = 0.0
    for i in range(1, total):
        last, l0 = step(i)
        l0s += l0
    sync()
    t2 = time.perf_counter()
    per = (t2 - t1) / a.steps
    gemm = 2.0 * a.batch * a.m * a.d * a.h
    print(f"impl=torch-{torch.__version__}")
    print(f"type={a.type}")
    print(f"device={a.device}" + (f" ({torch.cuda.get_device_name()})" if a.device == "cuda" else ""))
    print(f"m={a.m}\nd={a.d}\nh={a.h}\nbatch={a.batch}\nsteps={a.steps}")
    print(f"threads={torch.get_num_threads()}")
    print(f"density_target={a.density:.4f}\ndensity_measured={l0s / a.steps / a.h:.4f}")
    print(f"loss_first={first:.6g}\nloss_last={last:.6g}")
    print(f"warmup_s={t1 - t0:.4f}\nsec_per_step={per:.5f}")
    print(f"dense_equiv_gflops={5.0 * gemm / per * 1e-9:.2f}")
    print(f"rows_per_s={a.batch / per:.1f}")


if __name__ == "__main__":
    main()
