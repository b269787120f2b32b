"""Seeded data for the corpus: class-pattern images and shapes to segment (from generator.data), a
tabular classification set with raw feature units, and token sequences from a small Markov source."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from generator import data


@dataclass
class Split:
    """Tensors of one task: x, y for training and validation; `kind` is cls, seg or lm."""

    kind: str
    x: torch.Tensor
    y: torch.Tensor
    vx: torch.Tensor
    vy: torch.Tensor
    n_classes: int
    raw_max: float  # largest raw input value before normalisation (255 for pixels)


def images(
    seed: int,
    proto_seed: int,
    n_classes: int,
    n_train: int,
    n_val: int,
    *,
    size: int = 16,
    channels: int = 3,
    contrast: float = 55.0,
    noise: float = 35.0,
    gain_jitter: float = 0.0,
    offset_jitter: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    kw = dict(
        size=size,
        channels=channels,
        contrast=contrast,
        noise=noise,
        prototype_seed=proto_seed,
        gain_jitter=gain_jitter,
        offset_jitter=offset_jitter,
    )
    tr = data.pattern_images(seed, n_classes, n_train, **kw)
    va = data.pattern_images(seed + 7919, n_classes, n_val, **kw)
    return tr.images, tr.labels, va.images, va.labels


def segmentation(seed: int, n_train: int, n_val: int, size: int = 16):
    tr = data.shapes_segmentation(seed, n_train, size)
    va = data.shapes_segmentation(seed + 7919, n_val, size)
    return tr.images, tr.labels, va.images, va.labels


def exposure(x: np.ndarray, seed: int, gain: float, offset: float) -> np.ndarray:
    """Per-image gain in [1 - gain, 1 + gain] and offset in [-offset, offset] around mid-grey (uint8)."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(1 - gain, 1 + gain, (len(x), 1, 1, 1)).astype(np.float32)
    o = rng.uniform(-offset, offset, (len(x), 1, 1, 1)).astype(np.float32)
    out = (x.astype(np.float32) - 128.0) * g + 128.0 + o
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


FEATURE_SCALES = np.array(
    [2000.0, 300.0, 50.0, 10.0, 5.0, 1.0, 120.0, 30.0, 0.5, 800.0, 3.0, 60.0], np.float32
)


def tabular(seed: int, n_classes: int, n_train: int, n_val: int, features: int = 12, noise: float = 1.0):
    """Classes as Gaussian clusters around seeded centres (partly non-linear: each class has two modes),
    features in raw units from 0.5 to 2000 (like a CSV of sensor readings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.6, (n_classes, 2, features)).astype(np.float32)
    scales = FEATURE_SCALES[:features]
    offsets = rng.uniform(0, 3, features).astype(np.float32)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % n_classes)
        mode = rng.integers(0, 2, n)
        z = centres[y, mode] + noise * rng.standard_normal((n, features)).astype(np.float32)
        return ((z + offsets) * scales).astype(np.float32), y.astype(np.int64)

    x, y = draw(n_train)
    vx, vy = draw(n_val)
    return x, y, vx, vy


def markov_tokens(seed: int, vocab: int, n_train: int, n_val: int, seq_len: int, order_noise: float = 0.1):
    """Sequences from a seeded 2nd-order source: each (previous two tokens) pair has a few likely
    successors, so a small LM can get well below ln(vocab). Returns inputs and next-token targets."""
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, vocab, (vocab, vocab, 3))
    probs = rng.dirichlet(np.ones(3) * 0.6, (vocab, vocab))

    def draw(n: int) -> np.ndarray:
        out = np.empty((n, seq_len + 1), np.int64)
        out[:, 0] = rng.integers(0, vocab, n)
        out[:, 1] = rng.integers(0, vocab, n)
        for t in range(2, seq_len + 1):
            a, b = out[:, t - 2], out[:, t - 1]
            u = rng.random(n)
            pick = (u[:, None] > np.cumsum(probs[a, b], axis=1)).sum(1).clip(0, 2)
            nxt = succ[a, b, pick]
            noisy = rng.random(n) < order_noise
            nxt[noisy] = rng.integers(0, vocab, int(noisy.sum()))
            out[:, t] = nxt
        return out

    tr, va = draw(n_train), draw(n_val)
    return tr[:, :-1], tr[:, 1:], va[:, :-1], va[:, 1:]
