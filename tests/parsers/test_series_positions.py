"""`TrainingLog.series` takes rows at positions grouped once per metrics table: it must give what a scan
of the table gives, and follow a table that was replaced or grew (tests and the watch do both)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from parsers.model import RunMeta, TrainingLog, frame_from_columns


def table(steps: list[int], metrics: list[str], splits: list[str]) -> pd.DataFrame:
    values = np.arange(len(steps), dtype=float)
    return frame_from_columns(
        {"step": steps, "metric": metrics, "split": splits, "name": metrics, "value": values}
    )


def scanned(log: TrainingLog, metric: str, split: str) -> list[float]:
    m = log.metrics
    return m[(m["metric"] == metric) & (m["split"] == split)]["value"].tolist()


def test_series_equals_a_scan_of_the_table():
    log = TrainingLog(
        table(
            [1, 1, 2, 2, 2, 3],
            ["loss", "lr", "loss", "loss", "lr", "loss"],
            ["train", "train", "train", "val", "train", "train"],
        ),
        RunMeta(),
    )
    for metric, split in [("loss", "train"), ("lr", "train"), ("loss", "val"), ("accuracy", "val")]:
        assert log.series(metric, split)["value"].tolist() == scanned(log, metric, split)
    assert log.series("loss", "train")["step"].tolist() == [1, 2, 3]
    assert len(log.series("accuracy", "val")) == 0


def test_series_follows_a_replaced_or_longer_table():
    log = TrainingLog(table([1, 2, 3], ["loss"] * 3, ["train"] * 3), RunMeta())
    assert log.series("loss")["value"].tolist() == [0.0, 1.0, 2.0]
    log.metrics = log.metrics[log.metrics["step"] != 2]  # replaced by a filtered copy
    assert log.series("loss")["step"].tolist() == [1, 3]
    log.metrics = pd.concat(
        [log.metrics, table([4, 4], ["loss", "lr"], ["train", "train"])], ignore_index=True
    )
    assert log.series("loss")["step"].tolist() == [1, 3, 4]
    assert log.series("lr")["step"].tolist() == [4]
