"""Small PyTorch models and loop helpers for the non-Caffe runs."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageSet


def tensors(
    ds: ImageSet, *, normalize: tuple[float, float] | None = (128.0, 64.0)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float tensors: (x - mean) / std, or raw 0..255 floats when `normalize` is None."""
    x = torch.from_numpy(ds.images.astype(np.float32))
    if normalize is not None:
        x = (x - normalize[0]) / normalize[1]
    return x, torch.from_numpy(ds.labels)


def batches(
    n: int, batch: int, gen: torch.Generator, *, shuffle: bool = True, drop_last: bool = False
) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    stop = n - n % batch if drop_last else n
    for i in range(0, stop, batch):
        yield order[i : i + batch]


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on `loss`."""
    opt.zero_grad()
    loss.backward()
    opt.step()


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 250, *, loss_fn=F.cross_entropy
) -> tuple[float, float]:
    """Mean loss and accuracy over a set (the caller chooses train/eval mode)."""
    total, correct = 0.0, 0
    for i in range(0, len(x), batch):
        out = model(x[i : i + batch])
        total += float(loss_fn(out, y[i : i + batch], reduction="sum"))
        correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return total / len(x), correct / len(x)


class MLP(nn.Module):
    def __init__(self, sizes: list[int], dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in pairwise(sizes[:-1]):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """conv(-BN)-ReLU-pool x2, conv(-BN)-ReLU, global average pool, linear."""

    def __init__(
        self,
        in_ch: int,
        n_classes: int,
        widths: tuple[int, int, int] = (16, 32, 64),
        *,
        bn: bool = False,
        bn_momentum: float = 0.1,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_ch
        for i, w in enumerate(widths):
            layers.append(nn.Conv2d(prev, w, 3, padding=1, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(w, momentum=bn_momentum))
            layers.append(nn.ReLU())
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            prev = w
        self.features = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(prev, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.features(x).mean(dim=(2, 3))))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(out)) + self.short(x))


class TinyResNet(nn.Module):
    def __init__(self, in_ch: int, n_classes: int, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks, prev = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(prev, w, 1 if i == 0 else 2))
            prev = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(prev, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))
