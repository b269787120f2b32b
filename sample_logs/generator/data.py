"""Synthetic but learnable data sets, generated from a seed: class patterns in noise (images), shapes to
segment, and an unnormalised regression table. Images are uint8 in [0, 255] like an LMDB of JPEGs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,) for classification, (N, H, W) for segmentation

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int) -> ImageSet:
        return ImageSet(self.images[:n], self.labels[:n])


def _prototypes(rng: np.random.Generator, n_classes: int, channels: int, size: int) -> np.ndarray:
    """One smooth pattern per class in [-1, 1]: a few signed Gaussian blobs plus an oriented grating."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    protos = np.zeros((n_classes, channels, size, size), np.float32)
    for k in range(n_classes):
        for c in range(channels):
            img = np.zeros((size, size), np.float32)
            for _ in range(3):
                cy, cx = rng.uniform(0.15, 0.85, 2)
                width = rng.uniform(0.08, 0.25)
                img += rng.choice([-1.0, 1.0]) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
            angle, freq = rng.uniform(0, np.pi), rng.uniform(1.0, 3.0)
            img += 0.5 * np.sin(
                2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 6)
            )
            protos[k, c] = img / (np.abs(img).max() + 1e-6)
    return protos


def pattern_images(
    seed: int,
    n_classes: int,
    n: int,
    size: int = 16,
    channels: int = 3,
    contrast: float = 60.0,
    noise: float = 30.0,
    shift: int = 1,
    prototype_seed: int | None = None,
    gain_jitter: float = 0.0,
    offset_jitter: float = 0.0,
) -> ImageSet:
    """`n` images of `n_classes` patterns (balanced, shuffled): 128 + contrast * pattern (shifted by up to
    `shift` pixels) + Gaussian pixel noise, optionally with a per-image gain and offset (exposure). The
    `prototype_seed` fixes the patterns so that train and test sets drawn with different seeds show the
    same classes."""
    protos = _prototypes(
        np.random.default_rng(seed if prototype_seed is None else prototype_seed), n_classes, channels, size
    )
    rng = np.random.default_rng(seed + 1)
    labels = rng.permutation(np.arange(n) % n_classes)
    images = np.empty((n, channels, size, size), np.float32)
    for i, k in enumerate(labels):
        dy, dx = rng.integers(-shift, shift + 1, 2)
        images[i] = np.roll(protos[k], (int(dy), int(dx)), axis=(1, 2))
    images = contrast * images + noise * rng.standard_normal(images.shape).astype(np.float32)
    if gain_jitter or offset_jitter:  # per-image exposure: gain in [1 - g, 1 + g], offset in [-o, o]
        gain = rng.uniform(1 - gain_jitter, 1 + gain_jitter, (n, 1, 1, 1)).astype(np.float32)
        images = gain * images + rng.uniform(-offset_jitter, offset_jitter, (n, 1, 1, 1)).astype(np.float32)
    images = 128.0 + images
    return ImageSet(np.clip(np.rint(images), 0, 255).astype(np.uint8), labels.astype(np.int64))


def shapes_segmentation(seed: int, n: int, size: int = 32) -> ImageSet:
    """Single-channel images with a filled square (class 1) and a disc (class 2) on a noisy background
    (class 0). Both shapes have the same mean brightness, so only their outline tells them apart."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images = np.empty((n, 1, size, size), np.float32)
    labels = np.zeros((n, size, size), np.int64)
    for i in range(n):
        img = 90.0 + rng.uniform(-20, 20) + 25.0 * rng.standard_normal((size, size))
        lab = np.zeros((size, size), np.int64)
        for cls in rng.permutation([1, 2]):
            r = int(rng.integers(4, 8))
            cy, cx = rng.integers(r, size - r, 2)
            if cls == 1:
                mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
            else:
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= (r + 1) ** 2
            img[mask] = 150.0 + 25.0 * rng.standard_normal(int(mask.sum()))
            lab[mask] = cls
        images[i, 0] = img
        labels[i] = lab
    return ImageSet(np.clip(np.rint(images), 0, 255).astype(np.uint8), labels)


def regression_table(seed: int, n: int, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """House-price-like regression with raw, unnormalised features (scales from 1 to ~2000) and a
    target that is a noisy linear function of them (float32)."""
    rng = np.random.default_rng(seed)
    scales = np.array([2000.0, 300.0, 50.0, 10.0, 5.0, 1.0, 120.0, 30.0][:features], np.float32)
    x = rng.uniform(0.2, 1.0, (n, features)).astype(np.float32) * scales
    w = rng.normal(0, 1, features).astype(np.float32) / scales
    y = x @ w * 10.0 + 0.3 * rng.standard_normal(n).astype(np.float32)
    return x, y.astype(np.float32)
