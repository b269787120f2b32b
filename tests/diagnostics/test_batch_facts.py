"""Faults that depend on the batch, found on runs of several families and formats of the corpus:
BatchNorm over 1-2 samples stated by PyTorch settings (LD304: `batch_norm: true`, `arch: resnet`), a
loss summed over the batch under SGD with an lr for its mean (LD306 from the settings, LD114 from the
curves: a training loss the batch size times the evaluation loss). Healthy runs get none of them."""

from __future__ import annotations

import gzip

import pytest
from diag_helpers import REAL_LOGS, SAMPLE_LOGS, real_logs

from diagnostics import diagnose
from parsers import load, load_paths

RUNS = SAMPLE_LOGS / "corpus" / "runs"
BATCH_RULES = ("LD304", "LD306", "LD114")


def run(name: str):
    return load_paths(sorted((RUNS / name).iterdir()))


def fired(log) -> set[str]:
    return {f.rule for f in diagnose(log).findings if f.rule in BATCH_RULES}


# ---------------------------------------------------------------- LD304 from PyTorch settings
@pytest.mark.parametrize(
    ("name", "setting"),
    [
        ("mlp_000_batch2_bn", "batch_norm"),  # Lightning hparams.yaml, batch 2
        ("mlp_048_batch2_bn", "batch_norm"),  # print-style Namespace echo, batch 2
        ("resnet_026_batch1_bn", "resnet"),  # Lightning hparams.yaml: the architecture has BatchNorm
    ],
)
def test_batchnorm_stated_by_a_setting_with_a_batch_of_1_or_2(name, setting):
    log = run(name)
    assert log.meta.batchnorm[0].source == "setting" and log.meta.batchnorm[0].name == setting
    d = diagnose(log)
    found = next(f for f in d.findings if f.rule == "LD304")
    assert found.evidence[0].key == "evidence.bn_tiny_batch_setting"
    assert found.evidence[0].params["batch"] == log.meta.batch_size <= 2
    assert d.symptom.symptom in ("flat", "plateau")
    assert "small_batch" in [c.id for c in d.causes[:2]]


@pytest.mark.parametrize("name", ["mlp_000_batch2_bn", "mlp_048_batch2_bn"])  # Lightning, print-style
def test_the_cause_card_quotes_the_batch_setting_once(name):
    """LD304 and the batch-size fact both cite the line that states the batch: shown once."""
    from present import panels

    d = diagnose(run(name))
    card = next(c for c in panels.causes(d, "en") if c.id == "small_batch")
    quoted = [(e.source, e.line) for e in card.evidence if e.quote is not None]
    assert quoted and len(quoted) == len(set(quoted))
    assert len(card.evidence) == len(next(c for c in d.causes if c.id == "small_batch").evidence)


def test_batchnorm_in_inference_mode_computes_no_statistics():
    head = "Namespace(arch='resnet18', batch_size=2, lr=0.01{})"
    training = load([("train.log", (head.format("") + "\n" + _steps()).encode())])
    assert "LD304" in fired(training)  # the same settings with BatchNorm computing statistics
    frozen = load([("train.log", (head.format(", freeze_bn=True") + "\n" + _steps()).encode())])
    assert frozen.meta.batchnorm and frozen.meta.batchnorm_flags
    assert "LD304" not in fired(frozen)


def test_a_setting_without_batchnorm_wins_over_the_architecture_name():
    head = "Namespace(arch='resnet18', batch_norm=False, batch_size=1, lr=0.01)"
    assert not load([("train.log", (head + "\n" + _steps()).encode())]).meta.batchnorm


def _steps() -> str:
    return (
        "\n".join(f"Epoch [1/3], Step [{s}/40], Loss: {2.3 - 0.01 * s:.4f}" for s in range(5, 41, 5)) + "\n"
    )


# ------------------------------------------------------------ LD306: a sum over the batch, SGD
@pytest.mark.parametrize(
    "name", ["charlm_071_sum_reduction"]
)  # print-style (the training split has no other)
def test_summed_loss_over_the_batch_under_sgd(name):
    log = run(name)
    d = diagnose(log)
    found = next(f for f in d.findings if f.rule == "LD306")
    evidence = found.evidence[0]
    assert evidence.key == "evidence.unnormalized_batch_sum"
    assert evidence.params["batch"] == log.meta.batch_size
    assert float(evidence.params["effective"]) == pytest.approx(
        log.meta.base_lr * log.meta.batch_size, rel=1e-2
    )
    assert d.causes[0].id == "loss_normalization"


def test_summed_loss_under_adam_is_not_an_lr_mismatch():
    """Adam's step does not grow with the loss's scale: the same real run, told it used Adam."""
    sgd = _gunzip(RUNS / "charlm_071_sum_reduction" / "train.log.gz")
    assert {"LD306", "LD114"} <= fired(load([("train.log", sgd.encode())]))
    assert "evidence.unnormalized_batch_sum" in evidence_keys(load([("train.log", sgd.encode())]))
    adam = load([("train.log", sgd.replace("optimizer='sgd'", "optimizer='adam'").encode())])
    assert "LD114" not in fired(adam)
    # a loss summed over the tokens is still far above ln(C) (LD306's other reading), not an lr mismatch
    assert "evidence.unnormalized_batch_sum" not in evidence_keys(adam)


def evidence_keys(log) -> set[str]:
    return {e.key for f in diagnose(log).findings for e in f.evidence}


def _gunzip(path) -> str:
    return gzip.decompress(path.read_bytes()).decode()


# --------------------------------------------------- LD114: the curves show the sum, no settings
@pytest.mark.parametrize(
    "name",
    ["cnn_001_sum_reduction", "cnn_043_sum_reduction", "cnn_079_sum_reduction", "fcn_046_sum_reduction"],
)  # TensorBoard events, Keras CSV, HF trainer_state (twice): none of them states the reduction
def test_training_loss_a_batch_multiple_of_the_evaluation_loss(name):
    d = diagnose(run(name))
    found = next(f for f in d.findings if f.rule == "LD114")
    assert found.measurements["ratio"] >= 4
    assert d.symptom.symptom != "healthy"
    assert d.causes[0].id == "loss_normalization"


@pytest.mark.parametrize(
    "name",
    [
        "cnn_001_healthy_augment_val_below",
        "mlp_042_healthy_short",
        "mlp_030_healthy_augment_val_below",
        "resnet_080_healthy_augment_val_below",
        "caffe_cnn_000",
    ],
)
def test_two_losses_near_zero_are_no_sum(name):
    """Trained nets: the training loss is many times a tiny evaluation loss, but far below ln(C)."""
    log = run(name)
    assert "LD114" not in fired(log)
    assert diagnose(log).symptom.symptom == "healthy"


def test_no_real_log_gets_a_batch_fault():
    """None of the team's real logs trains with a summed loss or BatchNorm over 1-2 samples."""
    if not (REAL_LOGS / "MANIFEST.csv").exists():
        pytest.skip("real logs not available")
    found = {name: sorted(fired(log)) for name, log in real_logs()}
    assert {name: rules for name, rules in found.items() if rules} == {}
