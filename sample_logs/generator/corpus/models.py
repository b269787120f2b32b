"""The model families of the corpus. Every model names its last layer `head` (the part a fine-tuning run
trains) and the rest its backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generator.torchkit import TinyResNet


class MLPNet(nn.Module):
    def __init__(self, d_in: int, hidden: list[int], n_out: int, *, bn: bool = False, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = d_in
        for h in hidden:
            layers.append(nn.Linear(prev, h))
            if bn:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            prev = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(prev, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvNet(nn.Module):
    """Plain conv net: `blocks` of 3x3 convs (each a list of widths) with a 2x2 pool after each block,
    optional BN, global average pool, optional hidden fc with dropout, linear head. A small CNN has 2-3
    blocks of one conv; a VGG-style net 3 blocks of 2-5 convs and no BN."""

    def __init__(
        self,
        in_ch: int,
        n_classes: int,
        blocks: list[list[int]],
        *,
        bn: bool = False,
        fc: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_ch
        for block in blocks:
            for w in block:
                layers.append(nn.Conv2d(prev, w, 3, padding=1, bias=not bn))
                if bn:
                    layers.append(nn.BatchNorm2d(w))
                layers.append(nn.ReLU())
                prev = w
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        tail: list[nn.Module] = [nn.Flatten()]
        if fc:
            tail += [nn.Linear(prev, fc), nn.ReLU()]
            prev = fc
        if dropout:
            tail.append(nn.Dropout(dropout))
        self.pre = nn.Sequential(*tail)
        self.head = nn.Linear(prev, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pre(F.adaptive_avg_pool2d(self.features(x), 1)))


class ResNet(TinyResNet):
    """generator.torchkit.TinyResNet (BasicBlocks with BatchNorm) with its classifier named `head`."""

    def __init__(self, in_ch: int, n_classes: int, widths: tuple[int, ...]):
        super().__init__(in_ch, n_classes, widths)
        self.head = self.fc
        del self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class FCN(nn.Module):
    """FCN-style segmentation net: conv stack with two 2x2 pools, 1x1 score conv (`head`), bilinear
    upsampling x4 back to the input size; per-pixel logits."""

    def __init__(self, in_ch: int, n_classes: int, widths: list[int], *, bn: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_ch
        pools = {len(widths) // 3, 2 * len(widths) // 3}
        for i, w in enumerate(widths):
            layers.append(nn.Conv2d(prev, w, 3, padding=1, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.ReLU())
            if i in pools:
                layers.append(nn.MaxPool2d(2))
            prev = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(prev, n_classes, 1)
        self.n_pools = len(pools)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = self.head(self.features(x))
        return F.interpolate(score, size=x.shape[-2:], mode="bilinear", align_corners=False)


class CharLM(nn.Module):
    """Char-level LM: embedding, a GRU or a tiny causal transformer, linear `head` over the vocabulary."""

    def __init__(self, vocab: int, dim: int, *, kind: str = "gru", layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.kind = kind
        self.embed = nn.Embedding(vocab, dim)
        if kind == "gru":
            self.body = nn.GRU(dim, dim, num_layers=layers, batch_first=True)
        else:
            layer = nn.TransformerEncoderLayer(dim, 4, 2 * dim, dropout, batch_first=True)
            self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.pos = nn.Parameter(torch.randn(64, dim) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        if self.kind == "gru":
            h, _ = self.body(h)
        else:
            t = x.shape[1]
            mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
            h = self.body(h + self.pos[:t], mask=mask, is_causal=True)
        return self.head(self.drop(h))


def gaussian_init(model: nn.Module, std: float) -> None:
    """Caffe-style `gaussian std` filler on every conv/linear weight, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def backbone_names(model: nn.Module) -> list[str]:
    """Names of the top-level weight layers outside the head, as a freeze message lists them."""
    out = []
    for name, m in model.named_modules():
        if name.startswith("head") or not name:
            continue
        if isinstance(m, nn.Linear | nn.Conv2d | nn.Embedding | nn.GRU):
            out.append(name)
    return out


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def depth_of(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d))
