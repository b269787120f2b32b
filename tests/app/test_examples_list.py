"""The "try an example" list: single files, folders as multi-file runs, descriptions from labels.csv."""

from __future__ import annotations

from present.examples import list_examples


def test_files_and_folders_become_runs_with_descriptions(tmp_path):
    (tmp_path / "caffe_nan.log").write_text("I0101 Iteration 0, loss = nan\n")
    run = tmp_path / "caffe" / "fcn_scratch"
    run.mkdir(parents=True)
    (run / "train.log").write_text("log")
    (run / "solver.prototxt").write_text("base_lr: 1e-9")
    (tmp_path / "labels.csv").write_text(
        "path,framework,symptom\ncaffe_nan.log,caffe,nan\ncaffe/fcn_scratch,caffe,flat\n"
    )
    (tmp_path / "README.md").write_text("about")
    (tmp_path / "regenerate.py").write_text("")
    examples = {e.name: e for e in list_examples(tmp_path)}
    assert set(examples) == {"caffe_nan.log", "caffe/fcn_scratch"}
    assert examples["caffe/fcn_scratch"].description == "flat"
    assert sorted(name for name, _ in examples["caffe/fcn_scratch"].files()) == [
        "solver.prototxt",
        "train.log",
    ]
    assert examples["caffe_nan.log"].files() == [("caffe_nan.log", b"I0101 Iteration 0, loss = nan\n")]


def test_missing_folder_gives_no_examples(tmp_path):
    assert list_examples(tmp_path / "absent") == []


def test_without_labels_top_files_and_leaf_folders_are_runs(tmp_path):
    (tmp_path / "a.log").write_text("x")
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "events.out.tfevents.1").write_bytes(b"\x00")
    assert [e.name for e in list_examples(tmp_path)] == ["a.log", "runs/r1"]
