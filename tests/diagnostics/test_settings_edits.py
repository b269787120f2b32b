"""Corrected settings of PyTorch-ecosystem runs (diagnostics/settings_edits.py via corrections): the
corpus's real runs (Lightning's hparams.yaml, print logs echoing an argparse Namespace) and real lines of
public logs. The corrected file differs in the one number, `patch -p0` applies the diff, and the
corrected file is read back with the new value."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from diag_helpers import REPO

from diagnostics import corrections, diagnose, settings_edits
from diagnostics.model import Fix
from parsers import load, load_paths
from parsers.formats import lightning_hparams
from parsers.source import SourceFile

RUNS = REPO / "sample_logs" / "corpus" / "runs"
REAL = REPO.parent / "shared" / "real_logs"
PATCH = shutil.which("patch")


def _unpacked(run: str, into: Path) -> list[Path]:
    """A corpus run's files as the user has them (the corpus stores them gzipped)."""
    into.mkdir(parents=True, exist_ok=True)
    out = []
    for f in sorted((RUNS / run).iterdir()):
        target = into / f.name.removesuffix(".gz")
        target.write_bytes(gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes())
        out.append(target)
    return out


def _offers(paths: list[Path]):
    diagnosis = diagnose(load_paths([str(p) for p in paths]))
    configs, options = corrections.for_uploads([(p.name, p.read_bytes()) for p in paths], diagnosis)
    return diagnosis, configs, options


def test_a_lightning_runs_hparams_yaml_gets_the_raised_lr_and_nothing_else(tmp_path):
    """charlm_041: a GRU language model with Adam at lr 1.4e-06 (1000x too small) stays flat; the fix
    raises it to Adam's usual start, 1e-3."""
    paths = _unpacked("charlm_041_lr_div1e3", tmp_path / "run")
    diagnosis, configs, options = _offers(paths)
    assert diagnosis.causes[0].id == "lr_too_low"
    assert [c.name for c in configs] == ["hparams.yaml"]
    option = options[0]
    assert (option.cause, option.fix) == ("lr_too_low", "fixes.raise_lr")
    [edit] = option.edits
    assert (edit.file, edit.line, edit.before, edit.after) == ("hparams.yaml", 7, "lr: 1.4e-06", "lr: 0.001")
    assert edit.explain("zh").startswith("lr: 1.4e-06 → 0.001")
    result = corrections.apply(configs, [option])
    before = (tmp_path / "run" / "hparams.yaml").read_text().splitlines(keepends=True)
    after = result.files["hparams.yaml"].splitlines(keepends=True)
    assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [6]
    reread = lightning_hparams.parse(SourceFile("hparams.yaml", result.files["hparams.yaml"].encode()))
    assert reread.meta.base_lr == pytest.approx(1e-3)
    if PATCH:
        (tmp_path / "run" / "fix.patch").write_text(result.patches["hparams.yaml"])
        subprocess.run(
            [PATCH, "-p0", "-i", "fix.patch"], cwd=tmp_path / "run", check=True, capture_output=True
        )
        assert (tmp_path / "run" / "hparams.yaml").read_text() == result.files["hparams.yaml"]


def test_without_a_settings_file_the_echoed_namespace_comes_back_changed(tmp_path):
    """charlm_053 (print log): AdamW at an lr 300x too high; the log echoes its argparse Namespace."""
    paths = _unpacked("charlm_053_lr_x300", tmp_path)
    diagnosis, configs, options = _offers(paths)
    assert configs == [] and diagnosis.causes[0].id == "lr_too_high"
    echoed = paths[0].read_text().splitlines()[0]
    assert echoed.startswith("Namespace(") and "lr=0.84," in echoed
    assert options[0].command == echoed.replace("lr=0.84,", "lr=0.084,")


def test_the_cli_writes_the_corrected_settings_and_their_patch(tmp_path):
    paths = _unpacked("cnn_025_lr_x1000", tmp_path / "run")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "diagnostics",
            *map(str, paths),
            "--json",
            "--fix-dir",
            str(tmp_path / "fixed"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    report = json.loads(out.stdout)
    assert [(e["file"], e["before"], e["after"]) for e in report["edits"]] == [
        ("hparams.yaml", "lr: 70.0", "lr: 7")
    ]
    assert sorted(p.name for p in (tmp_path / "fixed").iterdir()) == ["hparams.yaml", "hparams.yaml.patch"]


@pytest.mark.parametrize(
    ("line", "names", "values"),
    [
        # mmdetection 2.x config dump (mmdet_text/faster_rcnn_carafed_coco_1x.log, line 249)
        ("optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)", ("lr",), [0.02]),
        # HF TrainingArguments echoed by the Trainer (hf_stdout/gemma2_lmsys_cls_stdout.log)
        ("learning_rate=7e-05,", ("learning_rate",), [7e-05]),
        ('  "learning_rate": 5e-05,', ("learning_rate",), [5e-05]),  # training_args.json
        ("python train.py --learning-rate 3e-4 --warmup-lr 1e-6", ("learning_rate",), [3e-4]),
        ("torchrun train.py --lr=0.1", ("lr",), [0.1]),
        ("  lr: 0.1  # peak", ("lr",), [0.1]),
        ("# lr: 0.1", ("lr",), []),  # a comment is no setting
        ("warmup_lr: 1e-6", ("lr",), []),  # another setting whose name ends in lr
        ("adam_beta2=0.999,", ("adam_beta2",), [0.999]),
    ],
)
def test_values_are_found_in_every_settings_syntax(line, names, values):
    assert [v for _, _, v in settings_edits.value_spans(line, names)] == values


def test_only_the_value_the_run_used_changes():
    change = settings_edits.change_of(Fix("fixes.lower_lr", {"name": "lr", "old": "0.1", "new": "0.01"}))
    assert change is not None
    lines = ["lr: 0.1\n", "max_lr: 0.5\n", "warmup_lr: 0.1\n", "head:\n", "  lr: 0.1\n"]
    assert settings_edits.changed_lines(lines, change) == [
        (1, "lr: 0.1", "lr: 0.01"),
        (5, "  lr: 0.1", "  lr: 0.01"),
    ]
    assert settings_edits.change_of(Fix("fixes.lower_lr_unknown", {"factor": 10})) is None


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_logs is absent")
def test_a_trainer_state_json_is_a_log_not_settings():
    data = (REAL / "hf_trainer_state" / "tinyllama_sft_trainer_state.json").read_bytes()
    assert not settings_edits.is_settings_file("trainer_state.json", data)
    assert settings_edits.is_settings_file("training_args.json", b'{"learning_rate": 5e-05}')


# HF's TrainingArguments.to_json_string() keys (a subset, in its order) as a run with clipping turned
# off and no warm-up saves them; the run is a real corpus HF Trainer run (training split) that spikes.
SPIKY_HF_RUN = RUNS / "charlm_017_mislabel_every17" / "trainer_state.json.gz"
HF_ARGS = {
    "output_dir": "out",
    "per_device_train_batch_size": 32,
    "gradient_accumulation_steps": 1,
    "learning_rate": 0.0028,
    "weight_decay": 0.01,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "max_grad_norm": 0.0,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "linear",
    "warmup_ratio": 0.0,
    "warmup_steps": 0,
}


def test_an_hf_training_args_json_gets_the_lr_the_clip_and_beta2(tmp_path):
    args = json.dumps(HF_ARGS, indent=2)
    files = [
        ("trainer_state.json", gzip.decompress(SPIKY_HF_RUN.read_bytes())),
        ("training_args.json", args.encode()),
    ]
    diagnosis = diagnose(load([*files]))
    configs, options = corrections.for_uploads(files, diagnosis)
    edits = {o.fix: o.edits for o in options if o.cause == "lr_too_high"}
    assert [(e.line, e.before, e.after) for e in edits["fixes.clip_gradients"]] == [
        (9, '  "max_grad_norm": 0.0,', '  "max_grad_norm": 1.0,')
    ]
    assert edits["fixes.lower_lr"][0].after == '  "learning_rate": 0.00028,'
    assert edits["fixes.adam_beta2"][0].after == '  "adam_beta2": 0.95,'
    assert edits["fixes.clip_gradients"][0].explain("zh").startswith("梯度裁剪：0（关闭）→ 1.0")
    corrected = corrections.apply(configs, [o for o in options if o.fix == "fixes.clip_gradients"])
    assert json.loads(corrected.files["training_args.json"]) == {**HF_ARGS, "max_grad_norm": 1.0}


@pytest.mark.parametrize(
    ("fix", "lines", "after"),
    [
        (
            Fix("fixes.warmup", {"steps": 25, "share": "5"}),
            ["warmup_iters = 0 # how many steps"],
            ["warmup_iters = 25 # how many steps"],
        ),
        (
            Fix("fixes.warmup", {"steps": 25, "share": "5"}),
            ["--lr-warmup-iters 0 --lr 3e-4"],
            ["--lr-warmup-iters 25 --lr 3e-4"],
        ),
        (Fix("fixes.warmup", {"steps": 25, "share": "5"}), ["warmup_steps: 500"], []),  # it warms up already
        (
            Fix("fixes.longer_warmup", {"old": 1000, "new": 2000}),
            ["  WARMUP_ITERS: 1000"],
            ["  WARMUP_ITERS: 2000"],
        ),
        (
            Fix("fixes.accumulate", {"batch": 2, "iter_size": 16, "effective": 32}),
            ["accumulate_grad_batches: 1"],
            ["accumulate_grad_batches: 16"],
        ),
        (
            Fix("fixes.accumulate", {"batch": 2, "iter_size": 16, "effective": 32}),
            ["accumulate_grad_batches: 4"],
            [],
        ),
        (Fix("fixes.clip_gradients"), ['  "gradient_clipping": 0,'], ['  "gradient_clipping": 1.0,']),
        (Fix("fixes.clip_gradients"), ["grad_clip = 0.5"], []),  # it clips already: left as the user set it
        (
            Fix("fixes.lower_lr", {"name": "lr", "old": "0.02", "new": "0.002"}),
            ["  BASE_LR: 0.02"],
            ["  BASE_LR: 0.002"],
        ),
    ],
)
def test_each_fix_edits_the_tools_own_setting_only_from_its_off_value(fix, lines, after):
    change = settings_edits.change_of(fix)
    assert [new for _, _, new in settings_edits.changed_lines(lines, change)] == after
