"""The outcome check: measures a recorded run (per-step losses, evaluations) and decides whether the
symptom its scenario predicts is what the numbers show. Self-contained on purpose (numpy only, nothing
from the app's diagnostics or parsers), so the labels never lean on the tool they will grade."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SYMPTOMS = [
    "healthy",
    "diverging",
    "nan",
    "flat",
    "plateau",
    "oscillating",
    "overfitting",
    "eval_gap",
    "spiky",
]
ACCEPTABLE = {
    "lr_too_high": {"diverging", "nan", "oscillating", "flat"},  # flat: dead ReLUs after the first blow-up
    "lr_too_low": {"flat", "plateau"},
    "input_scale": {"nan", "diverging", "flat", "plateau", "oscillating"},
    "bn_stats": {"eval_gap", "nan", "diverging", "flat", "plateau", "oscillating"},
    "no_pretraining": {"plateau", "flat"},
    "depth_init": {"flat", "plateau"},
    "small_batch": {"eval_gap", "oscillating", "plateau", "flat"},
    "loss_normalization": {"nan", "diverging", "oscillating", "flat"},  # flat: dead units after a blow-up
    "overfitting": {"overfitting", "eval_gap"},
    "data_issue": {"spiky", "nan"},
    # an fp16 loss scaler sliding to its floor: the run blows up, spikes, or stops moving (steps skipped)
    "fp16_overflow": {"nan", "diverging", "spiky", "flat", "plateau"},
}


def _rolling_median(x: np.ndarray, w: int) -> np.ndarray:
    if len(x) <= w:
        return np.full(len(x), np.median(x)) if len(x) else x
    pad = np.pad(x, (w // 2, w - 1 - w // 2), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, w)
    return np.median(win, axis=1)


@dataclass
class Measures:
    n: int
    first: float
    min_s: float
    final: float
    final_raw: float
    nonfinite_tail: float
    last_finite: bool
    any_nonfinite: bool
    tail_change: float  # relative change of the smoothed loss over the last 40 %
    swing: float  # p90-p10 of the raw second half over its median
    spikes: int
    spike_frac: float
    val: np.ndarray = field(default_factory=lambda: np.zeros(0))
    val_acc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    train_at_val: np.ndarray = field(default_factory=lambda: np.zeros(0))
    chance: float = math.inf  # loss of a uniform guess, ln(classes)

    @property
    def val_final(self) -> float:
        return float(self.val[-1]) if len(self.val) else math.nan

    @property
    def acc_final(self) -> float:
        return float(self.val_acc[-1]) if len(self.val_acc) else math.nan


def measure(
    losses: np.ndarray,
    evals: list[tuple[int, float, float, float]],
    steps: list[int],
    chance: float = math.inf,
) -> Measures:
    L = np.asarray(losses, np.float64)
    n = len(L)
    fin = np.isfinite(L)
    tail = L[int(n * 0.75) :]
    nonfinite_tail = float(np.mean(~np.isfinite(tail))) if len(tail) else 0.0
    F = L[fin]
    if len(F) == 0:
        return Measures(
            n, math.nan, math.nan, math.nan, math.nan, 1.0, False, True, 0.0, 0.0, 0, 0.0, chance=chance
        )
    k = max(3, len(F) // 20)
    first = float(np.median(F[: max(3, min(10, len(F) // 50))]))
    w = max(5, len(F) // 25)
    sm = _rolling_median(F, w)
    min_s = float(sm.min())
    final = float(np.median(F[-k:]))
    a, b = sm[int(len(sm) * 0.6)], sm[-1]
    tail_change = float((a - b) / max(abs(a), 1e-12))
    half = F[len(F) // 2 :]
    med = float(np.median(half)) if len(half) else 1.0
    swing = (
        float((np.percentile(half, 90) - np.percentile(half, 10)) / max(med, 1e-12)) if len(half) > 4 else 0.0
    )
    # isolated spikes: a step far above the local median whose neighbours a few steps on are back down
    loc = _rolling_median(F, max(9, w))
    spikes = 0
    for i in range(1, len(F) - 3):
        if (
            F[i] > 2.5 * loc[i]
            and F[i] > loc[i] + 0.3
            and F[i + 3] < 1.6 * loc[i]
            and F[i - 1] < 1.6 * loc[i]
        ):
            spikes += 1
    val = np.array([e[2] for e in evals], np.float64)
    acc = np.array([e[3] for e in evals], np.float64)
    step_arr = np.asarray(steps)
    tav = []
    for e in evals:  # smoothed train loss around each evaluation
        idx = np.nonzero(step_arr <= e[0])[0]
        j = int(idx[-1]) if len(idx) else 0
        seg = L[max(0, j - w) : j + 1]
        seg = seg[np.isfinite(seg)]
        tav.append(float(np.median(seg)) if len(seg) else math.nan)
    return Measures(
        n,
        first,
        min_s,
        final,
        float(L[-1]),
        nonfinite_tail,
        bool(fin[-1]),
        bool((~fin).any()),
        tail_change,
        swing,
        spikes,
        spikes / max(len(F), 1),
        val,
        acc,
        np.array(tav),
        chance,
    )


def is_nan(m: Measures) -> bool:
    return m.nonfinite_tail >= 0.5 and not m.last_finite


def is_diverging(m: Measures) -> bool:
    return (
        not is_nan(m)
        and math.isfinite(m.final)
        and m.final > 3 * max(m.min_s, 1e-3)
        and m.final > 1.3 * m.first
        and m.nonfinite_tail < 0.5
    )


def is_flat(m: Measures) -> bool:
    """Never clearly below its start, or (after a first blow-up) never clearly below a uniform guess."""
    level = min(m.first, m.chance)
    return (
        not m.any_nonfinite and math.isfinite(m.min_s) and m.min_s > 0.88 * level and m.final > 0.88 * level
    )


def is_overfitting(m: Measures) -> bool:
    v = m.val
    if len(v) < 4 or not np.all(np.isfinite(v)):
        return False
    i = int(np.argmin(v))
    if i >= len(v) - 2:
        return False
    rise = v[-1] - v[i]
    improved = v[i] < 0.85 * v[0]
    train_fell = math.isfinite(m.train_at_val[-1]) and m.train_at_val[-1] < 0.8 * m.train_at_val[i]
    return (
        improved and rise > max(0.15 * v[i], 0.05) and train_fell and v[-1] > 1.5 * m.train_at_val[-1] + 0.02
    )


def is_eval_gap(m: Measures) -> bool:
    v = m.val
    if len(v) < 2 or m.any_nonfinite or not np.all(np.isfinite(v)):
        return False
    train_final = m.train_at_val[-1]
    return (
        m.final < 0.7 * m.first
        and v[-1] > max(2.5 * train_final, train_final + 0.5)
        and float(np.median(v[len(v) // 2 :])) > max(2.0 * m.final, m.final + 0.4)
        and not (v.min() < 0.6 * v[0] and v[-1] > 1.3 * v.min() and v.min() < 1.5 * train_final + 0.3)
    )


def is_spiky(m: Measures) -> bool:
    return (
        m.spikes >= 2
        and m.spike_frac < 0.1
        and m.nonfinite_tail < 0.5
        and math.isfinite(m.final)
        and m.final < 0.8 * m.first
    )


def is_oscillating(m: Measures) -> bool:
    return (
        not m.any_nonfinite
        and m.swing > 0.6
        and m.final > 0.45 * m.first
        and m.final < 3 * max(m.min_s, 1e-3)
        and not is_spiky(m)
    )


def is_plateau(m: Measures, ref: Measures | None) -> bool:
    if m.any_nonfinite or not math.isfinite(m.final) or m.min_s > 0.88 * m.first:
        return False
    stalled = m.tail_change < 0.12
    if ref is not None and math.isfinite(ref.final):
        poor = m.final > ref.final + 0.3 * (m.first - ref.final) and m.final > 1.5 * ref.final + 0.02
        if len(ref.val) and len(m.val) and math.isfinite(ref.val_final) and math.isfinite(m.val_final):
            poor = poor and m.val_final > 1.3 * ref.val_final
    else:
        poor = m.final > 0.45 * m.first
    return stalled and poor


def is_healthy(m: Measures, ref: Measures | None, floor: float) -> tuple[bool, str]:
    if m.any_nonfinite:
        return False, "non-finite loss"
    if not m.final < 0.85 * m.first:
        return False, f"loss did not fall enough ({m.first:.3g} -> {m.final:.3g})"
    if m.final > 2.5 * max(m.min_s, 1e-3) and m.final - m.min_s > 0.1:
        return False, "loss rose well above its minimum"
    if is_overfitting(m):
        return False, "validation loss rose after its minimum (overfitting)"
    if is_eval_gap(m):
        return False, "validation far above training"
    if not len(m.val) or not math.isfinite(m.val_final):
        return False, "no finite validation"
    if not math.isfinite(m.acc_final):  # no accuracy logged (Caffe FCN): judge the validation loss
        if m.val_final > 0.8 * m.val[0]:
            return False, "validation loss did not fall"
        if ref is not None and math.isfinite(ref.val_final) and m.val_final > 1.3 * ref.val_final + 0.05:
            return False, "validation loss well above the healthy base's"
        return True, ""
    if ref is not None and math.isfinite(ref.acc_final):
        if m.acc_final < ref.acc_final - 0.12:
            return False, f"val acc {m.acc_final:.2f} below the healthy base's {ref.acc_final:.2f}"
    elif m.acc_final < floor:
        return False, f"val acc {m.acc_final:.2f} below the family's normal level {floor:.2f}"
    return True, ""


def classify(m: Measures, ref: Measures | None) -> str:
    """The symptom the numbers clearly show, or '' when none does."""
    if is_nan(m):
        return "nan"
    if is_diverging(m):
        return "diverging"
    if is_flat(m):
        return "flat"
    if is_overfitting(m):
        return "overfitting"
    if is_eval_gap(m):
        return "eval_gap"
    if is_spiky(m):
        return "spiky"
    if is_oscillating(m):
        return "oscillating"
    if is_plateau(m, ref):
        return "plateau"
    return ""


CHECKS = {
    "nan": lambda m, ref: is_nan(m),
    "diverging": lambda m, ref: is_diverging(m),
    "flat": lambda m, ref: is_flat(m),
    "plateau": is_plateau,
    "oscillating": lambda m, ref: is_oscillating(m),
    "overfitting": lambda m, ref: is_overfitting(m),
    "eval_gap": lambda m, ref: is_eval_gap(m),
    "spiky": lambda m, ref: is_spiky(m),
}


@dataclass
class Verdict:
    keep: bool
    symptom: str
    relabelled_from: str = ""
    reason: str = ""


def decide(expected: str, cause: str, m: Measures, ref: Measures | None, floor: float) -> Verdict:
    if expected == "healthy":
        ok, why = is_healthy(m, ref, floor)
        return Verdict(ok, "healthy", reason=why)
    if CHECKS[expected](m, ref):
        return Verdict(True, expected)
    seen = classify(m, ref)
    if seen and seen in ACCEPTABLE[cause.split(";")[0]]:
        return Verdict(True, seen, relabelled_from=expected)
    healthy, _ = is_healthy(m, ref, floor)
    what = "looks healthy" if healthy else f"shows {seen or 'no clear symptom'}"
    return Verdict(False, "", reason=f"expected {expected}, the run {what}")
