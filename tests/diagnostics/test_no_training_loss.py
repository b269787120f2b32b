"""LD117: a log without a training loss passes the curve rules unread, so "healthy" is shown as uncertain
with the evaluation loss summarised, and a NaN in that evaluation loss is still the verdict (LD101)."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from diag_helpers import REAL_LOGS, SAMPLE_LOGS

from diagnostics import diagnose
from diagnostics.__main__ import render_text
from i18n import t
from parsers import TrainingLog, load, load_paths
from parsers.names import LOSS_SYNONYMS

# A real Keras run (corpus) whose training loss turns NaN after one batch of NaN pixels; its
# validation loss follows one epoch later.
NAN_RUN = SAMPLE_LOGS / "corpus/runs/cnn_067_nan_pixels_batch/training.csv.gz"
HEALTHY_RUN = SAMPLE_LOGS / "lightning_warmup_cosine_healthy"


def without_columns(path, *dropped: str, renamed: dict[str, str] | None = None) -> TrainingLog:
    """The same CSVLogger file with some columns left out, as an evaluation-only export writes it, or
    renamed, as a script that names its loss otherwise writes it."""
    names = renamed or {}
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))
    rows = [{names.get(k, k): v for k, v in row.items() if k not in dropped} for row in rows]
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return load([("training.csv", out.getvalue().encode())])


def ld117(log: TrainingLog):
    d = diagnose(log)
    return d, [f for f in d.findings if f.rule == "LD117"]


def test_the_evaluation_loss_turning_nan_is_the_verdict():
    whole = diagnose(load_paths([NAN_RUN]))
    assert whole.symptom.symptom == "nan" and "LD117" not in {f.rule for f in whole.findings}
    d, (found,) = ld117(without_columns(NAN_RUN, "loss", "accuracy"))
    assert d.symptom.symptom == "nan" and d.symptom.series == "val/loss"
    assert d.symptom.onset_step == 7  # the first NaN validation epoch (epochs 0-6 are finite)
    assert d.causes == []  # the cause rules read the training loss
    summary = found.evidence[1].params
    assert summary["points"] == 12 and summary["nonfinite"] == 5 and summary["last"] == "nan"
    assert found.evidence[0].params == {"metrics": "train/lr, val/accuracy, val/loss"}


def test_a_healthy_run_without_its_training_loss_is_uncertain():
    log = load_paths(sorted(HEALTHY_RUN.iterdir()))
    whole = diagnose(log)
    assert whole.symptom.symptom == "healthy" and not whole.uncertain
    train_loss = (log.metrics["split"] == "train") & log.metrics["metric"].astype(str).str.contains("loss")
    cut = TrainingLog(metrics=log.metrics[~train_loss].reset_index(drop=True), meta=log.meta)
    d, (found,) = ld117(cut)
    assert d.symptom.symptom == "healthy" and d.uncertain
    assert whole.healthy_on_the_curves and not d.healthy_on_the_curves
    assert whole.symptom.series and d.symptom.series is None  # no curve was judged
    assert found.severity == "info" and found.evidence[1].params["nonfinite"] == 0
    text = render_text(cut, d, "en")
    assert "== Uncertain" in text and t("rules.LD117.title", "en") in text
    assert t("rules.LD117.title", "zh") in render_text(cut, d, "zh")


def test_accuracies_alone_say_nothing_of_the_loss():
    d, (found,) = ld117(without_columns(NAN_RUN, "loss", "val_loss"))
    assert d.symptom.symptom == "healthy" and d.uncertain
    assert len(found.evidence) == 1  # no evaluation loss to summarise
    assert found.evidence[0].params["metrics"] == "train/accuracy, train/lr, val/accuracy"


@pytest.mark.parametrize("name", LOSS_SYNONYMS)
def test_a_loss_under_another_name_is_the_loss(name):
    """A loss logged as `xent` / `val_xent` (no "loss" in the name) is judged as the loss."""
    whole = diagnose(load_paths([NAN_RUN]))
    d, found = ld117(without_columns(NAN_RUN, renamed={"loss": name, "val_loss": f"val_{name}"}))
    assert not found and d.symptom.series == f"train/{name}"
    assert (d.symptom.symptom, d.symptom.onset_step) == (whole.symptom.symptom, whole.symptom.onset_step)
    assert [c.id for c in d.causes] == [c.id for c in whole.causes]


def test_a_log_with_a_training_loss_is_judged_on_it():
    _, found = ld117(without_columns(NAN_RUN, "val_loss"))
    assert not found


@pytest.mark.skipif(not REAL_LOGS.is_dir(), reason="needs ../shared/real_logs")
def test_a_public_validation_only_log():
    """A public ViT run logged as validation loss and accuracy only (labelled healthy, borderline
    overfitting): the verdict stays healthy, shown as uncertain, and says why."""
    d, (found,) = ld117(load_paths([REAL_LOGS / "other/vit_cifar10_transposed_loss_acc.csv"]))
    assert d.symptom.symptom == "healthy" and d.uncertain
    assert found.evidence[1].params["points"] == 200


# A real HF Trainer state (corpus, training split); its last log_history entry is the end-of-run summary.
HF_STATE = SAMPLE_LOGS / "corpus/runs/mlp_000_healthy_step_decay/trainer_state.json.gz"


def test_the_trainers_end_of_run_mean_is_quoted_when_no_step_loss_was_logged():
    """A run whose `logging_steps` exceeds its length logs no per-step loss: the summary's mean
    `train_loss` is then its only training number, quoted from its own line (never drawn as a point)."""
    state = json.loads(gzip.decompress(HF_STATE.read_bytes()))
    summary = state["log_history"][-1]
    state["log_history"] = [entry for entry in state["log_history"] if "loss" not in entry]
    text = json.dumps(state, indent=2)
    log = load([("trainer_state.json", text.encode())])
    assert log.meta.train_loss_mean == summary["train_loss"]
    where = log.meta.where["train_loss_mean"]
    assert text.splitlines()[where.line - 1].strip() == f'"train_loss": {summary["train_loss"]},'
    assert "loss" not in set(log.metrics.loc[log.metrics["split"] == "train", "metric"].astype(str))
    d, (found,) = ld117(log)
    assert d.uncertain  # one mean over the run is no curve: the verdict stays uncertain
    mean = next(e for e in found.evidence if e.key == "evidence.train_loss_summary")
    assert mean.params == {"value": "0.1953"} and mean.quote == where
    for lang, words in (
        ("en", "mean training loss over the whole run: 0.1953"),
        ("zh", "平均训练损失：0.1953"),
    ):
        report = render_text(log, d, lang)
        assert words in report and "train_loss_mean = 0.1952" in report  # the evidence and the fact


def test_the_whole_state_keeps_the_mean_as_a_fact_only():
    log = load_paths([HF_STATE])
    assert log.meta.train_loss_mean == pytest.approx(0.19528339434681194)
    assert "LD117" not in {f.rule for f in diagnose(log).findings}  # its step losses are there


def test_hf_stdout_summary_dict_gives_the_mean():
    text = (
        "{'loss': 0.6931, 'grad_norm': 1.2, 'learning_rate': 4.9e-05, 'epoch': 1.0}\n"
        "{'eval_loss': 0.5166, 'eval_runtime': 1.2, 'epoch': 1.0}\n"
        "{'train_runtime': 61.2, 'train_samples_per_second': 9.8, 'train_loss': 0.44, 'epoch': 1.0}\n"
    )
    log = load([("train.out", text.encode())])
    assert log.meta.train_loss_mean == 0.44 and log.meta.where["train_loss_mean"].line == 3
    assert list(log.series("loss")["value"]) == [0.6931]  # the mean is not a point of the curve
