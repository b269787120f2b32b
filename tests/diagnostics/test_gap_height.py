"""LD107 also reads a gap on the loss's own scale (`gap_min_height`): once training nears zero, its
relative progress is ~100 % whatever the evaluation does, so a run that memorised 60 images (validation
stuck at half the first loss) looked like one whose evaluation kept pace. Real runs of the training split."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from diag_helpers import SAMPLE_LOGS, decaying, make_log

from diagnostics import diagnose, fitted
from diagnostics.context import Context
from diagnostics.rules.generalisation import eval_points, late_gap, never_generalised
from diagnostics.split import paths_of
from parsers import load_paths
from parsers.model import BatchNormLayer, RunMeta

RUNS = SAMPLE_LOGS / "corpus" / "runs"


def load(name: str):
    return load_paths(sorted((RUNS / name).iterdir()))


def gap_finding(diagnosis):
    return next((f for f in diagnosis.findings if f.rule == "LD107"), None)


@pytest.mark.parametrize("name", ["resnet_050_tiny_data_60", "cnn_007_tiny_data_60"])  # Keras CSV, TB
def test_a_memorised_tiny_data_set_is_an_eval_gap(name):
    log = load(name)
    d = diagnose(log)
    assert fitted.PARAMS.gap_min_height > 0
    assert d.symptom.symptom == "eval_gap"
    finding = gap_finding(d)
    assert finding.measurements["height"] > fitted.PARAMS.gap_min_height
    assert any(e.key == "evidence.val_gap_height" for e in finding.evidence)
    assert "overfitting" in [c.id for c in d.causes[:2]]
    # control: without the height, the relative progress alone lets the run pass as healthy
    off = diagnose(log, dataclasses.replace(fitted.PARAMS, gap_min_height=0.0))
    assert gap_finding(off) is None and off.symptom.symptom == "healthy"


@pytest.mark.parametrize("run", ["corpus/runs/mlp_072", "corpus_extra/runs/mlp_132"])
def test_a_healthy_gap_near_zero_is_not_wide(run):
    """Validation loss 16-20x training, both a few % of the first loss: a healthy run's gap."""
    d = diagnose(load_paths(sorted((SAMPLE_LOGS / run).iterdir())))
    assert d.symptom.symptom == "healthy"
    finding = gap_finding(d)
    assert finding is None or finding.measurements["height"] <= fitted.PARAMS.gap_min_height


def _training_runs(keep) -> list:
    """Training-split runs of the corpus and of the extra set whose label row passes `keep`."""
    runs = []
    for corpus in (SAMPLE_LOGS / "corpus", SAMPLE_LOGS / "corpus_extra"):
        training = paths_of("train", corpus)
        with (corpus / "labels.csv").open(newline="", encoding="utf-8") as fh:
            runs += [corpus / r["path"] for r in csv.DictReader(fh) if r["path"] in training and keep(r)]
    return runs


def _heights(runs) -> dict[str, tuple[float, bool]]:
    """Each run's late gap height and whether its validation loss never came down."""
    found = {}
    for run in runs:
        ctx = Context(load_paths(sorted(run.iterdir())), fitted.PARAMS)
        points = eval_points(ctx)
        if points is not None:
            found[run.name] = (late_gap(ctx, points).height, never_generalised(ctx, points.steps, points.val))
    return found


def test_the_height_lies_between_the_training_runs_healthy_gaps_and_memorised_ones():
    """Where the threshold sits on the fit's own data. Every tiny-data run labelled eval gap ends more
    than it above training (the lowest at 0.30 of its first loss). A height over it makes a gap on its
    own only for a validation loss that never came down (LD106 leaves those to LD107): no healthy
    training run is one. Healthy runs whose validation loss came down may end above it (5 of 480 at the
    fitted 0.15: frozen-backbone fine-tunes, a resumed run); there the height only says the evaluation
    lags, beside a ratio that must say it too."""
    healthy = _heights(_training_runs(lambda r: r["symptom"] == "healthy"))
    memorised = _heights(_training_runs(lambda r: r["symptom"] == "eval_gap" and "tiny_data" in r["path"]))
    assert len(healthy) >= 200 and len(memorised) >= 10
    height = fitted.PARAMS.gap_min_height
    assert not [run for run, (h, apart) in healthy.items() if apart and h > height]
    assert height < min(h for h, _ in memorised.values())


EXTRA = SAMPLE_LOGS / "corpus_extra" / "runs"


def test_two_near_zero_losses_are_no_gap_whatever_their_ratio():
    """cnn_157_healthy_resumed (extra training set, Keras CSV appended on resume): after the resume the
    training loss is ~2e-4 and the validation loss ~7e-4 at 100 % validation accuracy. Their ratio (3.6)
    passed for a broken evaluation; their difference is under `ld107_min_gap`."""
    log = load_paths(sorted((EXTRA / "cnn_157_healthy_resumed").iterdir()))
    _, vy, train = eval_points(Context(log, fitted.PARAMS))
    assert (vy / train).max() > fitted.PARAMS.gap_ratio
    assert (vy - train).max() < fitted.PARAMS.ld107_min_gap
    assert diagnose(log).symptom.symptom == "healthy"
    control = diagnose(log, params=dataclasses.replace(fitted.PARAMS, ld107_min_gap=0.0))
    assert control.symptom.symptom == "eval_gap"


def test_a_training_loss_printed_as_zero_keeps_the_gap_readable():
    """mlp_030_tiny_data_60 (training split) memorises 60 samples: its training loss is printed as
    `Loss: 0.0000` at some evaluations. Those points used to drop the whole comparison (no ratios); they
    count at half the smallest positive loss logged, and the run reads as the eval gap it is."""
    log = load("mlp_030_tiny_data_60")
    ctx = Context(log, fitted.PARAMS)
    assert (ctx.train_loss.values == 0).any()
    *_, train = eval_points(ctx)
    assert (train > 0).all()
    assert diagnose(log).symptom.symptom == "eval_gap"


def test_a_val_loss_that_never_fell_in_a_net_without_batchnorm_is_memorisation():
    """Training falls to 0.02 while the validation loss never gets below its first evaluation (2.70):
    in a net whose settings say it has no BatchNorm (a transformer), nothing can have broken the
    evaluation's statistics, so the first cause is memorisation (too little data); the same curves from a
    net with BatchNorm keep the broken evaluation first."""
    steps = np.arange(300) * 10
    train = decaying(300, 2.7, 0.02, 40, 0.0)
    evals = np.arange(1, 16) * 200
    val = 2.70 + np.abs(np.random.default_rng(0).normal(0, 0.03, 15))
    val[0] = 2.70
    meta = RunMeta(framework="pytorch", format="print_style", net_name="charlm_transformer")
    d = diagnose(make_log(train, steps=steps, val=(evals, val), meta=meta))
    assert d.symptom.symptom == "eval_gap"
    assert d.causes[0].id == "overfitting"
    assert d.causes[0].evidence[0].key == "evidence.memorised"
    layer = BatchNormLayer("bn1", "any", None, source="setting")
    with_bn = diagnose(
        make_log(train, steps=steps, val=(evals, val), meta=dataclasses.replace(meta, batchnorm=[layer]))
    )
    assert with_bn.symptom.symptom == "eval_gap"
    assert with_bn.causes[0].id == "bn_stats"
    assert not any(e.key == "evidence.memorised" for c in with_bn.causes for e in c.evidence)


def test_a_gap_after_the_validation_loss_came_far_down_is_memorisation_not_batchnorm():
    """resnet_038_tiny_data_60 (training split, a ResNet: BatchNorm known): the validation loss came
    down from 2.49 to 0.84 while training memorised 60 images. An evaluation that works that well does
    not have wrong BatchNorm statistics: overfitting first. Without the bar, BatchNorm led."""
    log = load("resnet_038_tiny_data_60")
    assert fitted.PARAMS.ld204_gap_generalised > 0
    d = diagnose(log)
    assert d.symptom.symptom == "eval_gap" and [c.id for c in d.causes[:2]] == ["overfitting", "bn_stats"]
    off = diagnose(log, dataclasses.replace(fitted.PARAMS, ld204_gap_generalised=0.0))
    assert off.causes[0].id == "bn_stats"


def test_a_batchnorm_momentum_gap_whose_validation_never_came_down_keeps_batchnorm_first():
    """resnet_194_bn_momentum_1e-04 (extra set, tuning): running statistics that barely move, the
    validation loss never below where it began: BatchNorm statistics first, bar or not."""
    d = diagnose(
        load_paths(sorted((SAMPLE_LOGS / "corpus_extra" / "runs" / "resnet_194_bn_momentum_1e-04").iterdir()))
    )
    assert d.symptom.symptom == "eval_gap" and d.causes[0].id == "bn_stats"
