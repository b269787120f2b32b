"""Small TrainingLogs for rule tests: curves shaped like real runs, facts as the parsers state them."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from parsers import ParseError, load_paths
from parsers.model import BatchNormLayer, LogLine, RunMeta, TrainingLog, WeightFiller, frame_from_columns

REPO = Path(__file__).resolve().parents[2]
REAL_LOGS = REPO / ".." / "shared" / "real_logs"
SAMPLE_LOGS = REPO / "sample_logs"


def make_log(
    train: np.ndarray,
    steps: np.ndarray | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    lr: np.ndarray | None = None,
    meta: RunMeta | None = None,
) -> TrainingLog:
    """A run with a train loss (and optionally val loss and lr at the train steps)."""
    n = len(train)
    steps = np.arange(n) * 20 if steps is None else np.asarray(steps)
    cols: dict[str, list] = {
        "step": list(steps),
        "split": ["train"] * n,
        "metric": ["loss"] * n,
        "value": list(train),
    }
    if lr is not None:
        cols["step"] += list(steps)
        cols["split"] += ["train"] * n
        cols["metric"] += ["lr"] * n
        cols["value"] += list(lr)
    if val is not None:
        vs, vv = val
        cols["step"] += list(vs)
        cols["split"] += ["val"] * len(vs)
        cols["metric"] += ["loss"] * len(vs)
        cols["value"] += list(vv)
    cols["line"] = list(range(10, 10 + len(cols["step"])))
    cols["source"] = ["train.log"] * len(cols["step"])
    return TrainingLog(frame_from_columns(cols), meta or RunMeta(framework="pytorch", format="print_style"))


def line(n: int, text: str, source: str = "train.log") -> LogLine:
    return LogLine(source, n, text)


def caffe_meta(**facts) -> RunMeta:
    """Caffe run facts with the header lines that state them."""
    meta = RunMeta(framework="caffe", format="caffe_glog")
    for name, (value, text, n) in facts.items():
        meta.set(name, value, line(n, text))
    return meta


def bn_layers(n: int, use_global_stats: bool | None, phase: str = "any") -> list[BatchNormLayer]:
    return [
        BatchNormLayer(
            f"bn{i}",
            phase,
            use_global_stats,
            line(40 + 9 * i, "  batch_norm_param { use_global_stats: true }"),
        )
        for i in range(n)
    ]


def fillers(n: int, kind: str, std: float | None = None) -> list[WeightFiller]:
    return [WeightFiller(f"conv{i}", kind, std, line(30 + 9 * i, f'    type: "{kind}"')) for i in range(n)]


def decaying(n: int, start: float, end: float, tau: float, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.arange(n)
    return (start - end) * np.exp(-x / tau) + end + noise * rng.standard_normal(n)


def real_logs() -> Iterator[tuple[str, TrainingLog]]:
    """(MANIFEST file name, parsed log) for every real log the parsers read (callers skip when absent)."""
    with (REAL_LOGS / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                yield row["file"], load_paths([REAL_LOGS / row["file"]])
            except ParseError:
                continue
