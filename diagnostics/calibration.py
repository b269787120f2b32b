"""Calibrated confidence: a verdict shown at 80 % should be right about 80 % of the time.

The rules give raw scores (how strongly their measurements point at a symptom or a cause). Platt
scaling maps each raw score to the frequency with which such verdicts were right on the training
split of the corpus: `p = sigmoid(a * logit(raw) + b)`, two numbers per kind of verdict, fitted by
`python -m diagnostics.fit` and stored in `diagnostics/fitted_params.json`. Below `uncertain_below`
the page and the CLI say "uncertain" and show the two leading readings instead of one word.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

_EPS = 1e-4


def logit(p: float | np.ndarray) -> float | np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Platt:
    """p = sigmoid(a * logit(raw) + b); the identity is a=1, b=0."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, raw: float) -> float:
        if not math.isfinite(raw):
            return raw
        z = self.a * float(logit(raw)) + self.b
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def fit(cls, raw: np.ndarray, correct: np.ndarray, ridge: float = 1.0) -> Platt:
        """Newton's method on the log-likelihood with a ridge pulling (a, b) towards the identity
        (1, 0), so that a handful of runs cannot bend the map far. Deterministic."""
        x = np.asarray(logit(np.asarray(raw, dtype=float)), dtype=float)
        y = np.asarray(correct, dtype=float)
        if len(x) == 0:
            return cls()
        w = np.array([1.0, 0.0])
        prior = np.array([1.0, 0.0])
        design = np.stack([x, np.ones_like(x)], axis=1)
        for _ in range(50):
            p = 1 / (1 + np.exp(-(design @ w)))
            grad = design.T @ (p - y) + ridge * (w - prior)
            hess = (design * (p * (1 - p))[:, None]).T @ design + ridge * np.eye(2)
            move = np.linalg.solve(hess, grad)
            w = w - move
            if np.max(np.abs(move)) < 1e-10:
                break
        return cls(round(float(w[0]), 6), round(float(w[1]), 6))


@dataclass(frozen=True)
class Calibration:
    """One Platt map per kind of verdict, and the floor under which a verdict is 'uncertain'."""

    problem: Platt = field(default_factory=Platt)  # a symptom other than healthy
    healthy: Platt = field(default_factory=Platt)  # the healthy verdict
    cause: Platt = field(default_factory=Platt)  # the first-ranked cause
    uncertain_below: float = 0.5

    def verdict(self, symptom: str, raw: float) -> float:
        return (self.healthy if symptom == "healthy" else self.problem)(raw)

    def to_dict(self) -> dict:
        return {
            "problem": [self.problem.a, self.problem.b],
            "healthy": [self.healthy.a, self.healthy.b],
            "cause": [self.cause.a, self.cause.b],
            "uncertain_below": self.uncertain_below,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(
            Platt(*data["problem"]),
            Platt(*data["healthy"]),
            Platt(*data["cause"]),
            float(data["uncertain_below"]),
        )


IDENTITY = Calibration()


def reliability(confidence: np.ndarray, correct: np.ndarray, edges=(0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)):
    """Rows (low, high, count, mean confidence, accuracy) of a reliability table."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    rows = []
    for lo, hi in pairwise(edges):
        inside = (confidence >= lo) & (confidence < hi)
        n = int(inside.sum())
        rows.append(
            (
                lo,
                min(hi, 1.0),
                n,
                float(confidence[inside].mean()) if n else math.nan,
                float(correct[inside].mean()) if n else math.nan,
            )
        )
    return rows


def brier(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Mean squared gap between the stated confidence and the 0/1 outcome (0 is perfect)."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    return float(np.mean((confidence - correct) ** 2)) if len(confidence) else math.nan
