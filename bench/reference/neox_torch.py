"""The GPT-NeoX (Pythia) model of the PyTorch benchmark references, written the way
transformers' modeling_gpt_neox.py computes it: eager attention over the full T x T
scores with a causal mask, parallel residual, rotary on 25% of each head's dims
(rotate-half), erf GELU, untied output head. Imported by forward_torch.py and
pretrain_torch.py so both time the same model."""
import math

import torch
import torch.nn.functional as F


class NeoX(torch.nn.Module):
    def __init__(self, vocab, hidden, layers, heads, ctx, init_std=None):
        super().__init__()
        C, self.H, self.V, self.T = hidden, heads, vocab, ctx
        self.hd = C // heads
        self.rot = int(self.hd * 0.25)
        I = 4 * C

        def lin(o, i, bias=True):
            m = torch.nn.Linear(i, o, bias=bias)
            if init_std is not None:  # HF _init_weights: normal weights, zero biases
                torch.nn.init.normal_(m.weight, std=init_std)
                if bias:
                    torch.nn.init.zeros_(m.bias)
            return m

        self.emb = torch.nn.Embedding(vocab, C)
        if init_std is not None:
            torch.nn.init.normal_(self.emb.weight, std=init_std)
        self.layers = torch.nn.ModuleList(
            torch.nn.ModuleDict(dict(ln1=torch.nn.LayerNorm(C), ln2=torch.nn.LayerNorm(C), qkv=lin(3 * C, C),
                                     dense=lin(C, C), fc=lin(I, C), proj=lin(C, I)))
            for _ in range(layers))
        self.lnf = torch.nn.LayerNorm(C)
        self.head = lin(vocab, C, bias=False)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, self.rot, 2).float() / self.rot))
        freqs = torch.outer(torch.arange(ctx).float(), inv_freq)
        e = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", e.cos()[None, None], persistent=False)
        self.register_buffer("sin", e.sin()[None, None], persistent=False)
        self.register_buffer("mask", torch.tril(torch.ones(ctx, ctx, dtype=torch.bool)), persistent=False)

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def block(self, L, h):
        B, T, C = h.shape
        hd, rot = self.hd, self.rot
        x = L["ln1"](h)
        qkv = L["qkv"](x).view(B, T, self.H, 3 * hd)
        q = qkv[..., :hd].permute(0, 2, 1, 3)
        k = qkv[..., hd:2 * hd].permute(0, 2, 1, 3)
        v = qkv[..., 2 * hd:].permute(0, 2, 1, 3)
        qr, qp = q[..., :rot], q[..., rot:]
        kr, kp = k[..., :rot], k[..., rot:]
        q = torch.cat((qr * self.cos + self.rotate_half(qr) * self.sin, qp), dim=-1)
        k = torch.cat((kr * self.cos + self.rotate_half(kr) * self.sin, kp), dim=-1)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        s = torch.where(self.mask, s, torch.tensor(torch.finfo(s.dtype).min))
        o = torch.matmul(torch.softmax(s, dim=-1), v).permute(0, 2, 1, 3).reshape(B, T, C)
        attn = L["dense"](o)
        mlp = L["proj"](F.gelu(L["fc"](L["ln2"](h))))
        return mlp + attn + h

    def residual(self, ids, n_blocks=None):
        """The residual after the first n_blocks blocks (all by default)."""
        h = self.emb(ids)
        for L in self.layers[:n_blocks]:
            h = self.block(L, h)
        return h

    def logits(self, ids):
        return self.head(self.lnf(self.residual(ids)))
