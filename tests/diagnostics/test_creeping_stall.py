"""A stalled loss that still creeps down: under a tiny lr the steps are too small (LD202); under a
working lr (`ld202_creep_working_lr`) the steps are fine but little can move, as when only a head trains
on layers frozen at random weights (LD205). Real runs of the corpus's tuning sets, four families, and one
synthetic deep FCN from scratch."""

from dataclasses import replace

import numpy as np
import pytest
from diag_helpers import SAMPLE_LOGS, caffe_meta, make_log

from diagnostics import diagnose, fitted
from parsers import load_paths

ON = replace(fitted.PARAMS, ld202_creep_working_lr=3e-4)
OFF = replace(fitted.PARAMS, ld202_creep_working_lr=0.0)


def _load(name: str):
    set_name, run = name.split("/", 1)
    return load_paths(sorted((SAMPLE_LOGS / set_name / "runs" / run).iterdir()))


def _keys(diagnosis, cause: str) -> set[str]:
    return {e.key for c in diagnosis.causes if c.id == cause for e in c.evidence}


@pytest.mark.parametrize(
    "name",
    [
        "corpus/fcn_064_frozen_random_backbone",
        "corpus_extra/fcn_154_frozen_random_backbone",
        "corpus_extra/resnet_170_frozen_random_backbone",
        "corpus_extra/resnet_212_frozen_random_backbone",
    ],
)
def test_a_creep_under_a_working_lr_points_at_frozen_random_layers(name):
    """Curves-only logs (no net, no freeze flag): the logged lr (1e-3..5e-2) is a working one."""
    log = _load(name)
    assert log.meta.net_name is None and log.meta.pretrained is None
    before, after = diagnose(log, params=OFF), diagnose(log, params=ON)
    assert before.causes[0].id == "lr_too_low" and "evidence.still_creeping" in _keys(before, "lr_too_low")
    assert after.symptom.symptom == before.symptom.symptom in ("flat", "plateau")
    assert after.causes[0].id == "no_pretraining", name
    assert "evidence.creeping_working_lr" in _keys(after, "no_pretraining")
    # the lr reading stays, but no longer says the steps are too small
    assert "evidence.still_creeping" not in _keys(after, "lr_too_low")


@pytest.mark.parametrize(
    "name",
    ["corpus/caffe_cnn_000_lr_div1e3", "corpus_extra/fcn_124_lr_div1e4", "corpus_extra/charlm_131_lr_div1e2"],
)
def test_a_creep_under_a_tiny_lr_stays_the_lr(name):
    """Caffe, FCN and char-LM runs 100-10,000x below their working lr (1.5e-5, 2e-5, 2e-5)."""
    d = diagnose(_load(name), params=ON)
    assert d.causes[0].id == "lr_too_low", name
    assert "evidence.still_creeping" in _keys(d, "lr_too_low")
    assert "evidence.creeping_working_lr" not in _keys(d, "no_pretraining")


def test_a_pretrained_run_is_not_blamed_on_missing_weights():
    """A run whose log says it loaded trained weights gets no creeping LD205 reading."""
    log = _load("corpus_extra/fcn_154_frozen_random_backbone")
    log.meta.set("pretrained", True)
    assert "no_pretraining" not in [c.id for c in diagnose(log, params=ON).causes]


def test_a_deep_net_from_scratch_keeps_its_reading_when_it_creeps():
    """A 16-layer FCN from scratch whose loss creeps at ln(3) under a working lr: LD205 keeps LD305's
    from-scratch evidence and its score, and adds the creep; under a tiny lr the creep is LD202's."""
    meta = caffe_meta(
        net_name=("fcn32s", 'name: "fcn32s"', 1),
        base_lr=(1e-3, "base_lr: 0.001", 3),
        pretrained=(False, "", 0),
        num_classes=(3, "num_output: 3", 50),
    )
    meta.depth = 16
    n = 300
    loss = np.linspace(1.0986, 1.085, n) + 0.0003 * np.random.default_rng(3).standard_normal(n)
    d = diagnose(make_log(loss, lr=np.full(n, 1e-3), meta=meta), params=ON)
    assert d.symptom.symptom == "flat" and d.causes[0].id == "no_pretraining"
    assert "LD305" in d.causes[0].rules
    assert {"evidence.creeping_working_lr", "evidence.from_scratch"} <= _keys(d, "no_pretraining")
    meta.base_lr = 1e-5
    d = diagnose(make_log(loss, lr=np.full(n, 1e-5), meta=meta), params=ON)
    assert "evidence.creeping_working_lr" not in _keys(d, "no_pretraining")
    assert "evidence.still_creeping" in _keys(d, "lr_too_low")


@pytest.mark.parametrize(
    "name",
    [
        "corpus/charlm_071_sum_reduction",
        "corpus_extra/mlp_240_lr_x100",
        "corpus_extra/caffe_mlp_026_lr_x1000",
    ],
)
def test_a_creep_under_an_lr_above_its_range_is_not_a_working_lr(name):
    """Char-LM, MLP and Caffe runs whose stated lr is far above their optimiser's usual range (LD309):
    the step explains the stall, so the creep is not LD205's reading of layers frozen at random."""
    d = diagnose(_load(name), params=ON)
    assert any(f.rule == "LD309" and f.measurements.get("lr_flag") == 1 for f in d.findings), name
    assert d.symptom.symptom in ("flat", "plateau")
    assert "evidence.creeping_working_lr" not in _keys(d, "no_pretraining"), name
