"""Time `diagnose` on a 1,000,000-point loss series (target: under 1 s on this machine).

    .venv/bin/python bench/diagnose_bench.py

The curve is a decaying minibatch loss with noise, a few spikes and an lr step decay, so every curve
rule does its full work; the best of 5 runs is printed (the first run includes imports and caches).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diagnostics import diagnose
from parsers.model import RunMeta, TrainingLog, frame_from_columns

POINTS = 1_000_000


def make_log(points: int = POINTS) -> TrainingLog:
    rng = np.random.default_rng(0)
    steps = np.arange(points)
    loss = 2.3 * np.exp(-steps / (points / 5)) + 0.3 + 0.1 * rng.standard_normal(points)
    loss[rng.choice(points, 20, replace=False)] += 5.0
    lr = np.where(steps < points // 2, 0.1, 0.01)
    frame = frame_from_columns(
        {
            "step": np.concatenate([steps, steps]),
            "split": ["train"] * (2 * points),
            "metric": ["loss"] * points + ["lr"] * points,
            "value": np.concatenate([loss, lr]),
            "line": np.arange(1, 2 * points + 1),
        }
    )
    return TrainingLog(frame, RunMeta(framework="pytorch", format="bench"))


def main() -> None:
    log = make_log()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        d = diagnose(log)
        times.append(time.perf_counter() - start)
    print(
        f"diagnose: {POINTS:,} loss points (+ {POINTS:,} lr points): best {min(times):.3f} s, "
        f"median {sorted(times)[2]:.3f} s -> {d.symptom.symptom}"
    )


if __name__ == "__main__":
    main()
