"""Every unmodified real log in ../shared/real_logs (MANIFEST.csv) parses into a non-empty loss series
(skipped when the folder is absent). The one crash log, which stops before its first iteration, gets
a clear ParseError that quotes the fatal line."""

import csv

import pytest
from real_log_files import REAL_LOGS

from parsers import ParseError, load_paths
from parsers.model import validate_metrics

MANIFEST = REAL_LOGS / "MANIFEST.csv"
# Logs that hold no training data at all, and what the error must say.
NO_TRAINING_DATA = {"caffe/ssd300_vgg16_ncs_retrain_job.log": "fatal error before the first iteration"}


def _manifest() -> list[dict]:
    if not MANIFEST.exists():
        return []
    with MANIFEST.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.skipif(not MANIFEST.exists(), reason="real logs absent")
@pytest.mark.parametrize("row", _manifest(), ids=lambda r: r["file"])
def test_real_log_parses_into_a_loss_series(row):
    path = REAL_LOGS / row["file"]
    if row["file"] in NO_TRAINING_DATA:
        with pytest.raises(ParseError, match=NO_TRAINING_DATA[row["file"]]):
            load_paths([path])
        return
    log = load_paths([path])
    validate_metrics(log.metrics)
    loss = [split for split in ("train", "val", "test") if len(log.series("loss", split))]
    assert loss, f"no loss series; metrics: {log.available()}"
    assert log.meta.format != "unknown"
