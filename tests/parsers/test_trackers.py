"""Runs from experiment trackers, read offline: the fixtures in tests/fixtures/trackers were written by
the real tools (mlflow 3.17.2, wandb 0.31.0 offline, tensorboardX 2.6.5; `make_fixtures.py`) and
must come out as the runs and the exact values `expected.json` records. The W&B panel CSV export is
the exception: it is a button of W&B's web page, so `wandb_export.csv` was written by the script
following its documented layout (`Step`, `<run> - <metric>`, `__MIN`, `__MAX`)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from parsers import ParseError, load
from parsers.model import LogLine
from parsers.runs import disk_groups, disk_runs, expand_zip, load_run, runs_from_paths, split_runs
from parsers.source import SourceFile
from parsers.trackers import points_line_by_line, regular_points

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trackers"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
LOGGED_RUNS = ("healthy-sgd", "diverging-lr10")


def tree_files(root: Path) -> list[tuple[str, bytes]]:
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


def zipped(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


def runs_by_name(root: Path) -> dict[str, object]:
    """Run label's name part (after `#`, in parentheses, or the last folder) -> TrainingLog."""
    out = {}
    for group in disk_groups(root):
        for run in disk_runs(root, group):
            name = run.label.split("#")[-1].rsplit("(", 1)[-1].rstrip(")").split("/")[-1]
            out[name] = load_run(run.sources)
    return out


def assert_curves(log, expected: dict, exact: bool = True) -> None:
    loss = log.series("loss", "train")
    want = np.asarray(expected["loss"], dtype=np.float64)
    got = loss["value"].to_numpy()
    np.testing.assert_array_equal(loss["step"].to_numpy(), np.arange(len(want)))
    np.testing.assert_array_equal(got, want if exact else want.astype(np.float32).astype(np.float64))
    if "val_loss" in expected:
        val = log.series("loss", "val")
        steps = sorted(int(s) for s in expected["val_loss"])
        np.testing.assert_array_equal(val["step"].to_numpy(), steps)
        want_val = np.array([expected["val_loss"][str(s)] for s in steps])
        np.testing.assert_array_equal(
            val["value"].to_numpy(), want_val if exact else want_val.astype(np.float32).astype(np.float64)
        )
        lr = expected["lr"] if exact else float(np.float32(expected["lr"]))
        assert set(log.series("lr", "train")["value"]) == {lr}


def test_mlflow_file_store_runs_with_params():
    runs = runs_by_name(FIXTURES / "mlruns")
    assert sorted(runs) == sorted(LOGGED_RUNS)  # mlruns/0 (the empty Default experiment) is no run
    for name, log in runs.items():
        assert log.meta.format == "mlflow"
        assert_curves(log, EXPECTED[name])
        params = EXPECTED[name]["params"]
        assert (log.meta.base_lr, log.meta.batch_size) == (params["lr"], params["batch_size"])
        assert (log.meta.optimizer, log.meta.momentum) == ("sgd", 0.9)
        assert log.meta.where["base_lr"] == LogLine("params/lr", 1, str(params["lr"]))
        assert log.metrics["wall_time"].min() == 0 and log.metrics["wall_time"].max() >= 0


def test_mlflow_sqlite_store_run_by_run():
    groups = [g for g in disk_groups(FIXTURES) if g.kind == "mlflow_db"]
    assert [g.name for g in groups] == [*LOGGED_RUNS, "flat-lr1e-7"]
    for group in groups:
        (run,) = disk_runs(FIXTURES, group)
        log = load_run(run.sources)
        assert run.label == f"mlflow.db#{group.name}"
        assert_curves(log, EXPECTED[group.name])
        assert log.meta.base_lr == EXPECTED[group.name]["params"]["lr"]
    # NaN is stored as 0 with is_nan set and inf as the largest float: both come back as logged
    (run,) = disk_runs(FIXTURES, groups[1])
    loss = load_run(run.sources).series("loss", "train")["value"].to_numpy()
    assert np.isposinf(loss[45]) and np.isnan(loss[46:]).all()


def test_tensorboard_log_directory_is_one_run_per_folder():
    runs = runs_by_name(FIXTURES / "tb_logdir")
    assert sorted(runs) == sorted(LOGGED_RUNS)
    for name, log in runs.items():
        assert log.meta.format == "tfevents"
        assert_curves(log, EXPECTED[name], exact=False)  # event files hold float32


def test_wandb_offline_run_folder_reads_its_output_log():
    runs = runs_by_name(FIXTURES / "wandb")
    assert sorted(runs) == sorted(LOGGED_RUNS)
    for name, log in runs.items():
        assert "wandb" in log.meta.formats and log.sources[0] == "output.log"
        assert_curves(log, EXPECTED[name])


def test_wandb_config_yaml_gives_the_run_settings(tmp_path):
    """Offline runs of wandb 0.31 keep the config inside the binary .wandb file; config.yaml here is
    written by hand in the layout online runs have (`key:` / `  desc:` / `  value:`)."""
    run = tmp_path / "run-20261203_120000-abc123"
    shutil.copytree(FIXTURES / "wandb" / "healthy-sgd", run)
    config = "_wandb:\n  value:\n    cli_version: 0.31.0\nbatch_size:\n  desc: null\n  value: 64\nlr:\n  value: 0.05\n"
    (run / "files" / "config.yaml").write_text(config)
    (log,) = runs_by_name(tmp_path).values()
    assert (log.meta.base_lr, log.meta.batch_size) == (0.05, 64)
    assert (log.meta.where["base_lr"].source, log.meta.where["base_lr"].line) == ("config.yaml", 8)
    assert not any(key.startswith("_wandb") for key in log.meta.hyperparams)


def test_wandb_folder_without_printed_log_says_where_the_curves_are(tmp_path):
    run = tmp_path / "offline-run-1"
    (run / "files").mkdir(parents=True)
    (run / "files" / "wandb-summary.json").write_text('{"train/loss": 0.2, "_step": 59}')
    (run / "run-1.wandb").write_bytes(b"\x00" * 16)
    (group,) = disk_groups(tmp_path)
    with pytest.raises(ParseError, match=r"binary run-<id>\.wandb.*train/loss=0\.2"):
        load_run(disk_runs(tmp_path, group)[0].sources)


def test_wandb_panel_export_is_one_run_per_name():
    runs = {run.label: run for run in runs_from_paths([FIXTURES / "wandb_export.csv"])}
    assert list(runs) == [f"wandb_export.csv#{name}" for name in LOGGED_RUNS]
    for name in LOGGED_RUNS:
        log = load_run(runs[f"wandb_export.csv#{name}"].sources)
        assert log.meta.format == "wandb_csv"
        assert_curves(log, {"loss": EXPECTED[name]["loss"]})
        assert set(log.metrics["name"]) == {"train/loss"}  # the __MIN/__MAX band is not a curve
    # read whole by the one-run reader: its first run, and a warning naming the others
    whole = load([SourceFile.from_path(FIXTURES / "wandb_export.csv")])
    assert len(whole.series("loss", "train")) == len(EXPECTED["healthy-sgd"]["loss"])
    assert any("2 runs in this export" in w.message for w in whole.warnings)


def test_zip_upload_of_every_tracker_splits_into_its_runs():
    files = [
        (f"fixtures/{name}", data)
        for name, data in tree_files(FIXTURES)
        if not name.endswith((".py", ".json"))
    ]
    runs = split_runs([("trackers.zip", zipped(files))])
    labels = [label for label, _ in runs]
    assert len(labels) == 2 * 5 + 1  # 2 runs in each of 5 sources, + the database's third run
    assert sum(label.startswith("fixtures/mlflow.db#") for label in labels) == 3
    assert {label.split("/")[1] for label in labels} == {"mlruns", "mlflow.db#healthy-sgd", "mlflow.db#diverging-lr10",
                                                         "mlflow.db#flat-lr1e-7", "tb_logdir", "wandb",
                                                         "wandb_export.csv#healthy-sgd",
                                                         "wandb_export.csv#diverging-lr10"}  # fmt: skip
    for label, run_files in runs:
        log = load_run(run_files)
        name = label.split("#")[-1].rsplit("(", 1)[-1].rstrip(")").split("/")[-1]
        np.testing.assert_array_equal(
            log.series("loss", "train")["value"].to_numpy(dtype=np.float32),
            np.asarray(EXPECTED[name]["loss"], dtype=np.float32),
        )


def test_one_run_upload_comes_back_as_given():
    files = tree_files(FIXTURES / "tb_logdir" / "healthy-sgd")
    assert split_runs(files) == [(files[0][0], tuple(files))]


def test_several_uploaded_logs_are_runs_named_by_their_own_files():
    """Not `first.log/second.log`: the root of several uploads is no file's."""
    runs = sorted((Path(__file__).resolve().parents[2] / "sample_logs" / "cross_run").glob("*.log"))[:2]
    files = [(p.name, p.read_bytes()) for p in runs]
    assert [label for label, _ in split_runs(files)] == [p.name for p in runs]


def test_folder_of_logs_is_one_run_per_log_with_the_configs_beside_each(tmp_path):
    log = (FIXTURES / "wandb" / "healthy-sgd" / "files" / "output.log").read_bytes()
    for name in ("a.log", "b.log"):
        (tmp_path / name).write_bytes(log)
    (tmp_path / "hparams.yaml").write_text("lr: 0.05\nbatch_size: 64\nmax_epochs: 3\n")
    runs = runs_from_paths([tmp_path])
    assert [run.label for run in runs] == [f"{tmp_path}/a.log", f"{tmp_path}/b.log"]
    assert all([s.name for s in run.sources][1:] == ["hparams.yaml"] for run in runs)
    assert all(load_run(run.sources).meta.batch_size == 64 for run in runs)
    (tmp_path / "b.log").unlink()
    (run,) = runs_from_paths([tmp_path])  # one log and its config: one run
    assert run.label == str(tmp_path) and len(run.sources) == 2


def test_mlflow_metric_file_keeps_good_lines_and_names_bad_ones(tmp_path):
    run = tmp_path / "0" / "abc"
    shutil.copytree(next((FIXTURES / "mlruns").glob("*/*/metrics")).parent, run)
    (run / "metrics" / "lr").write_text("1796304277656 0.1 0\ngarbage line here\n1796304277657 0.1\n")
    (log,) = [load_run(r.sources) for g in disk_groups(tmp_path) for r in disk_runs(tmp_path, g)]
    lr = log.series("lr", "train")
    assert list(lr["value"]) == [0.1, 0.1] and list(lr["step"]) == [0, 0]  # a 2-field line is step 0
    assert any(w.source == "metrics/lr" and w.line == 2 for w in log.warnings)


@pytest.mark.parametrize(
    ("member", "words"),
    [
        ("../evil.log", "outside the archive"),
        ("/etc/evil.log", "outside the archive"),
        ("C:/x.log", "outside"),
    ],
)
def test_zip_member_leaving_the_archive_refuses_it(member, words):
    data = zipped([("ok.log", b"step 1 loss=1.0\n"), (member, b"step 1 loss=1.0\n")])
    with pytest.raises(ParseError, match=words):
        expand_zip("up.zip", data)
    ((_, files),) = split_runs([("up.zip", data)])  # the page then shows the reason
    with pytest.raises(ParseError, match=words):
        load_run(files)


def test_zip_budgets_member_count_size_and_ratio(monkeypatch):
    many = zipped([(f"r{i}/train.log", b"step 1 loss=1.0\n") for i in range(6)])
    monkeypatch.setenv("LOSS_DOCTOR_MAX_ZIP_MEMBERS", "5")
    with pytest.raises(ParseError, match="6 files in the archive; refusing more than 5"):
        expand_zip("many.zip", many)
    monkeypatch.delenv("LOSS_DOCTOR_MAX_ZIP_MEMBERS")
    assert len(expand_zip("many.zip", many)) == 6
    monkeypatch.setenv("LOSS_DOCTOR_MAX_DECOMPRESSED_BYTES", "50")
    with pytest.raises(ParseError, match="expands to more than"):
        expand_zip("many.zip", many)
    monkeypatch.delenv("LOSS_DOCTOR_MAX_DECOMPRESSED_BYTES")
    bomb = zipped([("zeros.log", bytes(40 * 1024**2))])
    with pytest.raises(ParseError, match="expands more than 200 times"):
        expand_zip("bomb.zip", bomb)


def test_damaged_inputs_are_errors_not_crashes(tmp_path):
    assert split_runs([("x.zip", b"PK\x03\x04 not really")])[0][0] == "x.zip"
    with pytest.raises(ParseError, match="not a readable zip"):
        load_run([("x.zip", b"PK\x03\x04 not really")])
    huge_cell = b"Step,a - loss,b - loss\n0,1,2\n1," + b"9" * 200_000 + b",3\n"  # past the csv module's limit
    ((label, files),) = split_runs([("export.csv", huge_cell)])
    assert label == "export.csv" and len(load_run(files).series("loss", "train")) == 1
    db = (FIXTURES / "mlflow.db").read_bytes()
    ((_, files),) = split_runs([("mlflow.db", db[:4096])])  # cut inside the schema: not a store
    with pytest.raises(ParseError):
        load_run(files)


def test_event_files_named_by_tensorboard_are_one_run_renamed_ones_one_each(tmp_path):
    events = sorted((FIXTURES / "tb_logdir").rglob("events.out.tfevents.*"))
    for index, event in enumerate(events):  # TensorBoard's names: a run restarted in the same folder
        shutil.copy(event, tmp_path / f"{event.name}.{index}")
    (run,) = runs_from_paths([tmp_path])
    assert run.label == str(tmp_path) and len(run.sources) == 2
    for index, event in enumerate(events):  # renamed by hand: a folder of collected runs
        (tmp_path / f"{event.name}.{index}").rename(tmp_path / f"{event.parent.name}.tfevents")
    runs = runs_from_paths([tmp_path])
    assert sorted(run.label for run in runs) == sorted(f"{tmp_path}/{e.parent.name}.tfevents" for e in events)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**41),
            st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.1, -0.0, 1e300]),
            st.integers(-(2**53), 2**53),
        ),
        min_size=1,
        max_size=50,
    )
)
def test_metric_files_read_at_numpy_speed_give_what_the_line_reader_gives(points):
    text = "".join(f"{time} {value!r} {step}\n" for time, value, step in points)
    fast = regular_points(text)
    slow = points_line_by_line(SourceFile.from_bytes("metrics/loss", text.encode()), [])
    assert fast is not None
    for got, want in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(got, want)


NAMES = st.sampled_from(
    ["train.log", "meta.yaml", "metrics/loss", "params/lr", "files/output.log", "mlflow.db", "a/b.csv"]
)


@pytest.mark.filterwarnings("ignore:Duplicate name")  # an archive may repeat a name: kept as `name (2)`
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(NAMES | st.text(min_size=1, max_size=30), st.binary(max_size=300)), min_size=1, max_size=5
    ),
    st.booleans(),
)
def test_any_upload_splits_and_loads_or_says_why(members, as_zip):
    """Any bytes under any names, loose or zipped: split into runs without an error, and each run
    loads or raises ParseError (never another exception)."""
    # Python's zipfile cuts a member name at a NUL byte (a name of only NUL cannot be written at all)
    assume(not as_zip or all("\x00" not in name for name, _ in members))
    files = [("up.zip", zipped(members))] if as_zip else members
    for _, run_files in split_runs(files):
        with contextlib.suppress(ParseError):
            load_run(run_files)


def test_runs_deleted_in_mlflow_are_left_out_like_in_its_ui(tmp_path):
    shutil.copytree(FIXTURES / "mlruns", tmp_path / "mlruns")
    meta = next((tmp_path / "mlruns").glob("*/*/tags/mlflow.runName")).parents[1] / "meta.yaml"
    meta.write_text(meta.read_text().replace("lifecycle_stage: active", "lifecycle_stage: deleted"))
    assert len(runs_by_name(tmp_path / "mlruns")) == 1


def test_a_files_folder_is_not_taken_for_a_wandb_run(tmp_path):
    """`files/output.log` and `files/config.yaml` alone are no sign of W&B: the folder's log is read."""
    (tmp_path / "files").mkdir()
    shutil.copy(
        FIXTURES / "wandb" / "healthy-sgd" / "files" / "output.log", tmp_path / "files" / "output.log"
    )
    (tmp_path / "files" / "config.yaml").write_text("lr: 0.05\nbatch_size: 64\n")
    (run,) = runs_from_paths([tmp_path])
    assert run.label == f"{tmp_path}/files" and "wandb" not in load_run(run.sources).meta.formats


def test_a_name_from_the_root_is_split_without_looping():
    """`/x/train.log`: the folders above it end at "/", not "" (the search for a claimed parent looped
    for ever; found by the upload property above with a name starting with "/")."""
    files = [("/x/train.log", b"epoch 1 loss 0.5\n"), ("/x/y/train.log", b"epoch 1 loss 0.4\n")]
    labels: list[str] = []
    worker = threading.Thread(
        target=lambda: labels.extend(label for label, _ in split_runs(files)), daemon=True
    )
    worker.start()
    worker.join(timeout=30)  # a regression fails here instead of hanging the suite
    assert not worker.is_alive() and labels == ["/x", "/x/y"]
