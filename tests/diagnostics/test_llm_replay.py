"""The LLM divergence replay set (sample_logs/llm/replay/, from sample_logs/generator/llm_replay.py):
held-out test data for the early warnings, and its training twin (sample_logs/llm/train/), which they are
fitted on. Each run parses in the format it was written in, its label is what its own parsed numbers did
(re-checked here with NumPy, apart from the generator's regexes), and the early warnings are replayed on
the replay set with the committed thresholds."""

import csv

import numpy as np
import pytest

from diagnostics.early_warning import BLOWUP_FACTOR, PARAMS
from diagnostics.early_warning_fit import (
    LLM_REPLAY,
    LLM_REPLAY_LABELS,
    LLM_TRAIN,
    all_firsts,
    load_cases,
    replay_tasks,
)
from parsers import load_paths

pytestmark = pytest.mark.skipif(not LLM_REPLAY_LABELS.exists(), reason="sample_logs/llm/replay not there")
HEALTHY_END = 0.85  # a healthy run's last tenth averages at most this share of its first loss


def _rows(folder=LLM_REPLAY) -> list[dict]:
    labels = folder / "labels.csv"
    if not labels.exists():
        return []
    with labels.open(newline="", encoding="utf-8") as fh:
        return [row | {"folder": folder} for row in csv.DictReader(fh)]


SETS = [LLM_REPLAY, LLM_TRAIN]


def _outcome(path) -> str:
    """nan / diverging / healthy / "" from the parsed log: the generator's rule, on the parser's numbers."""
    log = load_paths([path])
    loss = log.series("loss")["value"].to_numpy(np.float64)
    nan_iters = log.series("nan_iters")["value"].to_numpy(np.float64)
    fatal = bool((log.events["kind"] == "fatal").any())
    finite = loss[np.isfinite(loss)]
    if not np.isfinite(loss).all() or (nan_iters > 0).any() or fatal:
        return "nan"
    if (finite >= BLOWUP_FACTOR * finite[0]).any():
        return "diverging"
    tail = finite[-max(1, len(finite) // 10) :]
    return "healthy" if tail.mean() <= HEALTHY_END * finite[0] else ""


@pytest.mark.parametrize("folder", SETS, ids=lambda f: f.name)
def test_the_set_is_there_and_balanced(folder):
    """24-40 runs, about half diverging or NaN, all three formats: what the benchmark row stands on."""
    rows = _rows(folder)
    positives = sum(r["symptom"] in ("nan", "diverging") for r in rows)
    assert 24 <= len(rows) <= 40
    assert 0.35 <= positives / len(rows) <= 0.65
    assert {r["format"] for r in rows} == {"nanogpt", "torchtitan", "megatron"}
    assert sorted(p.name for p in folder.glob("*.log.gz")) == sorted(r["path"] for r in rows)


def test_the_training_set_shares_no_run_with_the_replay_set():
    """Same families, other draws: no log of one set is a log of the other."""
    replay = {(LLM_REPLAY / r["path"]).read_bytes() for r in _rows(LLM_REPLAY)}
    assert not any((LLM_TRAIN / r["path"]).read_bytes() in replay for r in _rows(LLM_TRAIN))
    assert {r["settings"] for r in _rows(LLM_REPLAY)}.isdisjoint(r["settings"] for r in _rows(LLM_TRAIN))


ALL_ROWS = [row for folder in SETS for row in _rows(folder)]


@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda r: f"{r['folder'].name}/{r['path']}")
def test_every_run_parses_in_its_format(row):
    log = load_paths([row["folder"] / row["path"]])
    assert log.meta.format == row["format"]
    # every loss the generator read off its lines (nanoGPT's evaluations are another curve)
    assert len(log.series("loss")) == int(row["points"])


@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda r: f"{r['folder'].name}/{r['path']}")
def test_label_is_what_the_parsed_numbers_did(row):
    assert _outcome(row["folder"] / row["path"]) == row["symptom"]


@pytest.fixture(scope="module")
def replayed():
    """Each run replayed prefix by prefix with the committed thresholds: (cases by path, first warnings)."""
    cases = load_cases(replay_tasks(), jobs=1)
    return {c.path: c for c in cases}, all_firsts(cases, PARAMS)


def _first_warning(replayed, path) -> int | None:
    _, firsts = replayed
    return min((f[path] for f in firsts.values() if f[path] is not None), default=None)


@pytest.mark.parametrize("row", [r for r in _rows() if r["symptom"] == "healthy"], ids=lambda r: r["path"])
def test_healthy_run_is_never_warned(replayed, row):
    """Also the hard ones: poisoned stretches of data whose loss spike, grad-norm spike and fp16 scaler
    overflows recover (LD402 warned one at 3 halvings in 100 steps until the fit, given the LLM training
    set's fp16 runs, chose 4)."""
    assert _first_warning(replayed, row["path"]) is None


def test_every_diverging_or_nan_run_is_warned_before_its_onset(replayed):
    cases, _ = replayed
    positives = [c for c in cases.values() if c.positive]
    assert len(positives) >= 12
    for case in positives:
        first = _first_warning(replayed, case.path)
        assert first is not None and case.onset is not None and first < case.onset, case.path


def test_the_onset_replayed_is_the_one_the_generator_recorded(replayed):
    """The benchmark's onset (from the parsed curve) is the generator's, up to Megatron's NaN steps: the
    line of a NaN iteration leaves its loss out, so the onset is read at the next logged step."""
    cases, _ = replayed
    for row in _rows():
        if row["symptom"] == "diverging":
            assert cases[row["path"]].onset == int(row["onset_step"]), row["path"]
