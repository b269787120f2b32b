"""The large-model sample runs (sample_logs/llm/, from sample_logs/generator/llm_runs.py): each parses to
exactly the values its lines print (re-read here line by line, the naive way), its events are the scaler
and checkpoint lines it holds, and the diagnosis is checked against its label. They are not in
sample_logs/labels.csv: that set is fitted on."""

import csv
import math
import re

import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose
from parsers import load_paths

LLM = SAMPLE_LOGS / "llm"
LABELS = LLM / "labels.csv"
pytestmark = pytest.mark.skipif(not LABELS.exists(), reason="sample_logs/llm not there")


def _labels() -> list[dict]:
    if not LABELS.exists():
        return []
    with LABELS.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _number(text: str) -> float:
    return float(text.strip())


def _megatron_lines(path) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(split, key) -> [(step, value)] by splitting each line on `|` and `:`."""
    read: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for line in path.read_text().splitlines():
        if "] iteration " in line:
            fields = line.split("|")
            step = int(fields[0].split("iteration")[1].split("/")[0])
            for field in fields[1:-1]:
                key, value = field.split(":")
                read.setdefault(("train", key.strip()), []).append((step, _number(value)))
        elif line.startswith(" validation loss at iteration"):
            fields = line.split("|")
            step = int(fields[0].split()[-1])
            for field in fields[1:-1]:
                key, value = field.split(":")
                read.setdefault(("val", key.strip()), []).append((step, _number(value)))
    return read


@pytest.mark.parametrize("row", _labels(), ids=lambda row: row["path"])
def test_detected_format_and_diagnosis(row):
    log = load_paths([LLM / row["path"]])
    assert log.meta.format == row["format"]
    d = diagnose(log)
    assert d.symptom.symptom == row["symptom"]
    if row["cause"]:
        assert d.causes and d.causes[0].id in row["cause"].split(";")


@pytest.mark.parametrize("name", ["megatron_fp16_healthy.log", "megatron_fp16_loss_scale_collapse.log"])
def test_megatron_samples_parse_exactly(name):
    path = LLM / name
    log = load_paths([path])
    expected = _megatron_lines(path)
    names = {"lm loss": "loss", "learning rate": "lr", "loss scale": "loss_scale", "grad norm": "grad_norm"}
    names |= {"number of skipped iterations": "skipped_iters", "number of nan iterations": "nan_iters"}
    names |= {"lm loss value": "loss", "lm loss PPL": "perplexity", "consumed samples": "consumed_samples"}
    for (split, key), points in expected.items():
        if key not in names:
            continue
        series = log.series(names[key], split)
        assert list(zip(series["step"], series["value"], strict=True)) == points, key
    m = log.metrics
    assert set(m["metric"].astype(str)) == set(names.values())


def test_megatron_collapse_events_are_its_scaler_lines():
    path = LLM / "megatron_fp16_loss_scale_collapse.log"
    text = path.read_text().splitlines()
    events = load_paths([path]).events
    overflow = events[events["kind"] == "overflow"]
    lines = [i for i, line in enumerate(text, start=1) if "OVERFLOW!" in line]
    assert overflow["line"].tolist() == lines
    reduced = [float(m[1]) for line in text if (m := re.search(r"reducing to (\d+)$", line))]
    assert [v for v in overflow["value"] if not math.isnan(v)] == reduced
    fatal = events[events["kind"] == "fatal"]
    assert fatal["line"].tolist() == [len(text)]  # `Exception: Current loss scale already at minimum ...`
    assert (events[events["kind"] == "skipped"]["value"] > 0).all()


@pytest.mark.parametrize("name", ["nanogpt_char_healthy.log", "nanogpt_char_lr_too_high_diverging.log"])
def test_nanogpt_samples_parse_exactly(name):
    path = LLM / name
    text = path.read_text().splitlines()
    log = load_paths([path])
    iters = [
        (int(m[1]), float(m[2])) for line in text if (m := re.match(r"iter (\d+): loss ([\d.]+),", line))
    ]
    evals = [
        (int(m[1]), float(m[2]), float(m[3]))
        for line in text
        if (m := re.match(r"step (\d+): train loss (\S+), val loss (\S+)$", line))
    ]
    train, val = log.series("loss"), log.series("loss", "val")
    assert list(zip(train["step"], train["value"], strict=True)) == iters and len(iters) == 61
    assert list(zip(val["step"], val["value"], strict=True)) == [(s, v) for s, _, v in evals]
    saves = log.events[log.events["kind"] == "checkpoint_save"]
    assert saves["step"].tolist() == [s for s, _, _ in evals if s > 0]
