"""The evaluation arithmetic (symptom accuracy, cause top-1/top-2, false alarms, confusion)."""

from diagnostics import evaluate
from diagnostics.evaluate import Row


def test_scores_and_confusion():
    rows = [
        Row("a.log", "healthy", [], predicted="healthy"),
        Row("b.log", "healthy", [], predicted="spiky", ranked=["lr_too_high"]),
        Row("c.log", "nan", ["lr_too_high"], predicted="nan", ranked=["lr_too_high", "data_issue"]),
        Row("d.log", "flat", ["input_scale"], predicted="flat", ranked=["no_pretraining", "input_scale"]),
        Row("e.log", "eval_gap", ["bn_stats", "data_issue"], predicted="eval_gap", ranked=["data_issue"]),
    ]
    s = evaluate.score(rows)
    assert s.runs == 5 and s.symptom_accuracy == 0.8
    assert s.cause_runs == 3 and round(s.cause_top1, 3) == round(2 / 3, 3) and s.cause_top2 == 1.0
    assert s.healthy_runs == 2 and s.false_alarms == 1 and s.false_alarm_rate == 0.5
    assert s.confusion["healthy"]["spiky"] == 1 and s.confusion["nan"]["nan"] == 1
    assert [m["path"] for m in s.mistakes] == ["b.log", "d.log"]
    text = evaluate.render(s)
    assert "symptom accuracy: 80.0%" in text and "false alarms on healthy runs: 1/2 = 50.0%" in text


def test_labels_file_with_alternative_causes(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,format,symptom,cause,case,description\nx.log,caffe,flat,lr_too_low|loss_normalization,2,\n"
    )
    (row,) = evaluate.read_labels(labels)
    assert row.causes == ["lr_too_low", "loss_normalization"] and row.symptom == "flat"


def test_unreadable_file_counts_as_a_mistake(tmp_path):
    labels = tmp_path / "labels.csv"
    (tmp_path / "empty.log").write_bytes(b"")
    labels.write_text("path,symptom,cause\nempty.log,healthy,\n")
    rows, scores = evaluate.run(labels)
    assert scores.unreadable == 1 and rows[0].predicted == "unreadable" and scores.symptom_accuracy == 0
