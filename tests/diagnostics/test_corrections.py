"""Corrected Caffe configs (issue 10 item 1): the fixes of the three DEVELOPERS cases become line edits
of the uploaded prototxts (or of the solver/TRAIN net rebuilt from the log's echo). The corrected files
parse again, diagnosing with them drops the config finding of the fixed fault, the diffs apply with the
real `patch -p0`, and every line no edit names stays byte-identical. Real Caffe logs of
../shared/real_logs: their echoed prototxts are rebuilt, round-trip and take edits the same way."""

import csv
import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pytest
from diag_helpers import REPO

from diagnostics import corrections, diagnose
from diagnostics.model import Cause, Fix
from i18n import LANGUAGES
from parsers import ParseError, load_paths
from parsers.caffe_config import is_net, is_solver
from parsers.model import TrainingLog
from parsers.prototxt import parse_prototxt

SAMPLES = REPO / "sample_logs"
REAL_LOGS = REPO / "../shared/real_logs"
PATCH = shutil.which("patch")
# case -> (cause whose first option is applied, the config finding it must remove)
CASES = {
    "case1_resnet_frozen_bn": ("bn_stats", "LD301"),
    "case2_fcn_lr1e-9": ("lr_too_low", "LD309"),
    "case3_vgg_scaled": ("input_scale", "LD303"),
}


@cache
def _case(name: str, only_log: bool = False):
    folder = SAMPLES / name
    paths = [folder / "train.log"] if only_log else sorted(folder.iterdir())
    log = load_paths(paths)
    uploads = [(p.name, p.read_bytes()) for p in paths]
    configs = corrections.config_files(uploads)
    log_text = (folder / "train.log").read_text(encoding="utf-8")
    return log, diagnose(log), configs, corrections.options(diagnose(log), configs, log_text)


def _corrected(name: str, cause: str, only_log: bool = False):
    log, _, configs, opts = _case(name, only_log)
    chosen = corrections.choose(opts, [cause])
    assert chosen and chosen[0].edits, f"{name}: no edit for {cause}"
    return log, configs, corrections.apply(configs, chosen)


def _rediagnose(log, configs, result):
    meta = corrections.corrected_meta(log, result.files, configs)
    return diagnose(TrainingLog(log.metrics, meta, sources=log.sources))


def _assert_patch_applies(tmp_path: Path, configs, result) -> None:
    if PATCH is None:
        pytest.fail("the `patch` binary is missing: `./run test` installs it (apt-get install patch)")
    for config in configs:
        if config.name not in result.files:
            continue
        work = tmp_path / "patched"
        work.mkdir(parents=True, exist_ok=True)
        (work / config.name).write_bytes(corrections.encode(config.text))
        (work / "fix.patch").write_bytes(corrections.encode(result.patches[config.name]))
        done = subprocess.run(
            [PATCH, "-p0", "--quiet", "-i", "fix.patch"], cwd=work, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert (work / config.name).read_bytes() == corrections.encode(result.files[config.name])


def _assert_only_edited_lines_change(config, corrected: str, edits) -> None:
    before, after = config.text.splitlines(keepends=True), corrected.splitlines(keepends=True)
    deleted = {e.line for e in edits if e.file == config.name and e.after is None}
    changed = {e.line for e in edits if e.file == config.name and e.after is not None}
    kept = [line for number, line in enumerate(before, 1) if number not in deleted]
    added = [e.after for e in edits if e.file == config.name and e.before is None]
    if added:  # fields added at the end: the rest of the file is as it was (plus an ending on its last line)
        assert [line.rstrip("\r\n") for line in after[len(after) - len(added) :]] == added
        after = after[: len(after) - len(added)]
        after[-1] = after[-1] if kept[-1].endswith("\n") else after[-1].rstrip("\r\n")
    assert len(kept) == len(after)
    survivors = [n for n in range(1, len(before) + 1) if n not in deleted]
    for number, old, new in zip(survivors, kept, after, strict=True):
        if number in changed:
            assert old != new and old.endswith("\n") == new.endswith("\n")
        else:
            assert old == new


def _assert_parses(text: str, kind: str) -> None:
    msg = parse_prototxt(text)
    assert msg.problems == [] and not msg.truncated
    assert (is_solver if kind == "solver" else is_net)(msg)


@pytest.mark.parametrize("name", CASES)
def test_case_fix_edits_the_uploaded_file_and_removes_the_config_finding(name, tmp_path):
    cause, rule = CASES[name]
    log, configs, result = _corrected(name, cause)
    assert rule in {f.rule for f in diagnose(log).findings}
    assert result.rebuilt == {}
    for config in configs:
        if config.name in result.files:
            _assert_parses(result.files[config.name], config.kind)
            _assert_only_edited_lines_change(config, result.files[config.name], result.edits)
    assert rule not in {f.rule for f in _rediagnose(log, configs, result).findings}
    _assert_patch_applies(tmp_path, configs, result)
    for edit in result.edits:
        assert {edit.cause, edit.rule} == {cause, rule}
        for lang in LANGUAGES:
            assert edit.explain(lang)


def test_case1_shared_batchnorm_layers_lose_the_field():
    """The BN layers of case 1's train_val serve both phases: deleting use_global_stats gives Caffe's
    default (batch statistics in TRAIN, running ones in TEST); `false` would change the test net."""
    _, _, result = _corrected("case1_resnet_frozen_bn", "bn_stats")
    assert len(result.edits) == 9
    assert all(e.file == "trainval.prototxt" and e.after is None for e in result.edits)
    assert all(e.before.strip() == "use_global_stats: true" for e in result.edits)
    assert "use_global_stats" not in result.files["trainval.prototxt"]


def test_case2_raises_base_lr_to_the_fix_value_and_offers_the_weights_command_line():
    _, diagnosis, _, opts = _case("case2_fcn_lr1e-9")
    raise_fix = next(f for c in diagnosis.causes if c.id == "lr_too_low" for f in c.fixes)
    _, _, result = _corrected("case2_fcn_lr1e-9", "lr_too_low")
    (edit,) = result.edits
    assert (edit.file, edit.line, edit.before) == ("solver.prototxt", 8, "base_lr: 1e-09")
    assert edit.after == f"base_lr: {raise_fix.params['new']}"
    assert "# lr for unnormalized softmax\n" in result.files["solver.prototxt"]  # comments stay
    weights = corrections.choose(opts, ["no_pretraining"])[0]
    assert weights.edits == []
    assert weights.command == (
        "./build/tools/caffe train -solver solver.prototxt -weights VGG_ILSVRC_16_layers.caffemodel"
    )
    (normalize,) = corrections.choose(opts, ["loss_normalization=1"])[0].edits
    assert (normalize.before.strip(), normalize.after.strip()) == ("normalize: true", "normalize: false")


def test_case3_removes_scale_in_train_and_test_and_keeps_the_mean():
    _, _, result = _corrected("case3_vgg_scaled", "input_scale")
    assert [(e.line, e.after) for e in result.edits] == [(11, None), (30, None)]
    text = result.files["train_val.prototxt"]
    assert "scale:" not in text and text.count('mean_file: "imagenet_mean.binaryproto"') == 2
    assert "256x smaller" in result.edits[0].explain("en")


def test_several_causes_combine_and_the_default_is_the_leading_cause():
    _, _, configs, opts = _case("case2_fcn_lr1e-9")
    assert corrections.choose(opts) == corrections.choose(opts, ["lr_too_low"])
    both = corrections.apply(configs, corrections.choose(opts, ["lr_too_low", "loss_normalization"]))
    assert set(both.files) == {"solver.prototxt", "train_val.prototxt"}
    assert set(both.patches) == set(both.files)


@pytest.mark.parametrize("name", CASES)
def test_without_prototxt_the_solver_and_train_net_are_rebuilt_from_the_log(name, tmp_path):
    cause, rule = CASES[name]
    log, configs, result = _corrected(name, cause, only_log=True)
    assert {c.name: c.rebuilt_from for c in configs} == {
        "solver.prototxt": "train.log",
        "train_net.prototxt": "train.log",
    }
    assert set(result.rebuilt) == set(result.files) and set(result.rebuilt.values()) == {"train.log"}
    for config in configs:
        _assert_parses(config.text, config.kind)
        assert "I1124" not in config.text  # no glog line in the rebuilt file
    assert rule not in {f.rule for f in _rediagnose(log, configs, result).findings}
    _assert_patch_applies(tmp_path, configs, result)


def test_rebuild_strips_glog_prefixes_that_repeat_the_header_tag():
    log = (
        "I0101 00:00:00.000001  1 solver.cpp:44] Initializing solver from parameters: \n"
        "I0101 00:00:00.000001  1 solver.cpp:44] base_lr: 0.01\n"
        'I0101 00:00:00.000001  1 solver.cpp:44] lr_policy: "fixed"\n'
        "I0101 00:00:00.000002  1 solver.cpp:87] Creating training net from net file: x\n"
    )
    assert corrections.rebuild(log, "solver") == 'base_lr: 0.01\nlr_policy: "fixed"\n'
    assert corrections.rebuild(log, "net") is None


def test_untouched_files_round_trip_byte_identically(tmp_path):
    odd = b'# caf\xe9 latin-1\x0c comment\r\nbase_lr: 0.01\r\nlr_policy: "fixed"   # keep\r\nmax_iter: 10'
    (config,) = corrections.config_files([("solver.prototxt", odd)])
    assert corrections.encode(corrections.edit_text(config.text, [])) == odd
    assert corrections.apply([config], []).files == {}
    fix = Fix("fixes.raise_lr", {"name": "base_lr", "old": "0.01", "new": "0.1"}, "base_lr: 0.1", "prototxt")
    cause = Cause("lr_too_low", 0.9, fixes=[fix], rules=["LD202"])
    result = corrections.apply([config], corrections.options(SimpleNamespace(causes=[cause]), [config]))
    assert corrections.encode(result.files["solver.prototxt"]) == odd.replace(b"0.01", b"0.1")
    # the last line has no line ending: the diff says so and `patch` keeps it that way
    last = Fix("fixes.lr_policy_params", {}, "max_iter: 20", "prototxt")
    cause = Cause("bad_lr_policy", 0.9, fixes=[last], rules=["LD307"])
    result = corrections.apply([config], corrections.options(SimpleNamespace(causes=[cause]), [config]))
    assert corrections.encode(result.files["solver.prototxt"]) == odd.replace(
        b"max_iter: 10", b"max_iter: 20"
    )
    assert "\\ No newline at end of file" in result.patches["solver.prototxt"]
    _assert_patch_applies(tmp_path, [config], result)


def test_cli_writes_corrected_files_and_patches_and_lists_the_edits(tmp_path):
    out = tmp_path / "fixed"
    case1 = str(SAMPLES / "case1_resnet_frozen_bn")
    done = _cli(case1, "--json", "--fix-dir", str(out))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert len(report["edits"]) == 9
    assert set(report["edits"][0]) >= {"file", "line", "before", "after", "cause", "rule"}
    assert report["edits"][0]["rule"] == "LD301" and report["edits"][0]["cause"] == "bn_stats"
    assert sorted(p.name for p in out.iterdir()) == ["trainval.prototxt", "trainval.prototxt.patch"]
    corrected = (out / "trainval.prototxt").read_text(encoding="utf-8")
    assert "use_global_stats" not in corrected
    case2_log = str(SAMPLES / "case2_fcn_lr1e-9" / "train.log")
    echo = str(tmp_path / "echo")
    text = _cli(
        case2_log, "--fix-dir", echo, "--fix", "no_pretraining", "--fix", "lr_too_low", "--lang", "zh"
    )
    assert "-weights VGG_ILSVRC_16_layers.caffemodel" in text.stdout
    assert "根据 train.log 中打印的参数重建" in text.stdout
    assert (tmp_path / "echo" / "solver.prototxt").read_text(encoding="utf-8").count("base_lr: 1e-5") == 1


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "diagnostics", *args], cwd=REPO, capture_output=True, text=True
    )


# ---------------------------------------------------------------- real Caffe logs


def _real_caffe_logs() -> list[str]:
    manifest = REAL_LOGS / "MANIFEST.csv"
    if not manifest.exists():
        return []
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = [r["file"] for r in csv.DictReader(fh) if r["format"] == "caffe"]
    return [f for f in dict.fromkeys(rows) if (REAL_LOGS / f).exists()]


@pytest.mark.skipif(not _real_caffe_logs(), reason="real logs absent")
@pytest.mark.parametrize("relative", _real_caffe_logs())
def test_real_echoed_prototxts_rebuild_round_trip_and_take_edits(relative, tmp_path):
    data = (REAL_LOGS / relative).read_bytes()
    configs = corrections.config_files([(Path(relative).name, data)])
    if not configs:
        pytest.skip("the log echoes no solver or net")
    for config in configs:
        msg = parse_prototxt(config.text)
        assert (is_solver if config.kind == "solver" else is_net)(msg) or msg.truncated
        assert corrections.edit_text(config.text, []) == config.text
    fixes = [
        Fix("fixes.raise_lr", {"name": "base_lr", "old": "?", "new": "0.5"}, "base_lr: 0.5", "prototxt"),
        Fix("fixes.bn_use_batch_stats", {"layers": "?"}, None),
    ]
    cause = Cause("config", 0.9, fixes=fixes, rules=["LD301"])
    opts = corrections.options(SimpleNamespace(causes=[cause]), configs)
    result = corrections.apply(configs, opts)
    for config in configs:
        if config.name in result.files:
            assert parse_prototxt(result.files[config.name]).problems == parse_prototxt(config.text).problems
            _assert_only_edited_lines_change(config, result.files[config.name], result.edits)
    solver = next((c for c in configs if c.kind == "solver"), None)
    if solver is not None and parse_prototxt(solver.text).find("base_lr") is not None:
        assert parse_prototxt(result.files["solver.prototxt"]).get_float("base_lr") == 0.5
    net = next((c for c in configs if c.kind == "net"), None)
    if net is not None and net.name in result.files:
        assert "use_global_stats: true" not in result.files[net.name]
    _assert_patch_applies(tmp_path, configs, result)


def test_summaries_group_the_edits_of_one_kind():
    _, _, result = _corrected("case1_resnet_frozen_bn", "bn_stats")
    (line,) = corrections.summaries(result.edits, "zh")
    assert line.startswith(
        "trainval.prototxt:76, 131, 186, … (9)  删除 first_conv_bn, group0_block0_conv0_bn,"
    )


def test_a_missing_solver_field_is_added_at_the_end(tmp_path):
    (config,) = corrections.config_files([("solver.prototxt", b'base_lr: 0.01\nlr_policy: "fixed"  # x')])
    fix = Fix("fixes.weight_decay", {"new": "5e-4"}, "weight_decay: 5e-4", "prototxt")
    cause = Cause("overfitting", 0.9, fixes=[fix], rules=["LD104"])
    result = corrections.apply([config], corrections.options(SimpleNamespace(causes=[cause]), [config]))
    assert result.files["solver.prototxt"] == 'base_lr: 0.01\nlr_policy: "fixed"  # x\nweight_decay: 5e-4\n'
    (edit,) = result.edits
    assert (edit.line, edit.before, edit.after) == (3, None, "weight_decay: 5e-4")
    assert "weight_decay: - → 5e-4" in edit.explain("en")
    _assert_patch_applies(tmp_path, [config], result)


@pytest.mark.skipif(not _real_caffe_logs(), reason="real logs absent")
@pytest.mark.parametrize("relative", _real_caffe_logs())
def test_real_logs_own_fixes_rebuild_correct_and_drop_their_config_finding(relative, tmp_path):
    """Each option the diagnosis of a real Caffe log gives, applied to the solver/net rebuilt from its
    echo: parses again, `patch -p0` reproduces it, and an LD3xx finding the option is for goes away
    (e.g. LD309 after `base_lr` is lowered in the RMSProp runs)."""
    path = REAL_LOGS / relative
    try:
        log = load_paths([path])
    except ParseError:
        pytest.skip("no training data")
    diagnosis = diagnose(log)
    configs, opts = corrections.for_uploads([(path.name, path.read_bytes())], diagnosis)
    for number, option in enumerate(o for o in opts if o.edits):
        result = corrections.apply(configs, [option])
        for config in configs:
            if config.name in result.files:
                assert (
                    parse_prototxt(result.files[config.name]).problems == parse_prototxt(config.text).problems
                )
                _assert_only_edited_lines_change(config, result.files[config.name], result.edits)
        _assert_patch_applies(tmp_path / str(number), configs, result)
        if option.rule.startswith("LD3") and option.rule in {f.rule for f in diagnosis.findings}:
            fixed = _rediagnose(log, configs, result)
            if option.fix in (
                "fixes.raise_lr",
                "fixes.lower_lr",
                "fixes.bn_use_batch_stats",
                "fixes.remove_scale",
            ):
                assert option.rule not in {f.rule for f in fixed.findings}, option
