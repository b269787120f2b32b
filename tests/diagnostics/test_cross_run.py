"""LD501 (`diagnostics.cross_run`): loss spikes at the same step in several runs, on real runs trained on
this CPU that share a data order with corrupted batches (sample_logs/cross_run/, written by
sample_logs/generator/cross_runs.py), on the same runs without them, and on the team's healthy real logs."""

import csv
import dataclasses
import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from diag_helpers import REAL_LOGS, REPO

import diagnostics.__main__ as cli
import diagnostics.cross_run as cross_run
from diagnostics import diagnose, fitted
from diagnostics.cross_run import CROSS_RUN_RULES, DataOrder, _onset, _spikes_of, data_order, shared_spikes
from diagnostics.evaluate import REAL_LABELS
from diagnostics.registry import all_rules
from parsers import ParseError, load_paths

RUNS = REPO / "sample_logs" / "cross_run"
pytestmark = pytest.mark.skipif(not (RUNS / "labels.csv").exists(), reason="sample_logs/cross_run absent")


def _labels() -> list[dict[str, str]]:
    with (RUNS / "labels.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _runs(corrupted: bool, batch: int = 24) -> list[tuple[str, Path, list[int]]]:
    """(name, path, the first iteration of each corrupted shard) of the corrupted or the clean runs
    with `batch` sequences an iteration."""
    out = []
    for row in _labels():
        if bool(row["corrupted_iters"]) != corrupted or int(row["batch"]) != batch:
            continue
        bad = [int(s) for s in row["corrupted_iters"].split()]
        out.append((row["path"], RUNS / row["path"], [it for it in bad if it - 1 not in bad]))
    return out


def _line_of(path: Path, step: int) -> int:
    """The line of the log that prints the training loss of iteration `step` (nanoGPT's format)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(f"iter {step}:"))


@pytest.mark.parametrize("pair", list(combinations(range(3), 2)), ids=str)
def test_corrupted_batches_show_as_spikes_at_the_same_steps_in_every_pair(pair):
    chosen = [_runs(corrupted=True)[i] for i in pair]
    found = shared_spikes([(name, load_paths([path])) for name, path, _ in chosen])
    assert [f.rule for f in found] == ["LD501"]
    finding = found[0]
    assert not finding.by_samples  # the same batch size: aligned on steps
    assert [g.step for g in finding.shared] == chosen[0][2]  # where the generator's corrupted shards start
    for group in finding.shared:
        assert sorted(s.run for s in group.spikes) == [0, 1]
        for member in group.spikes:
            path = chosen[member.run][1]
            assert member.spike.step == group.step and member.spike.height >= 2
            assert (member.source, member.line) == (path.name, _line_of(path, group.step))
    quoted = [e.quote for e in finding.evidence if e.quote is not None]
    assert len(quoted) == 2 * len(finding.shared)
    assert finding.chance < 0.01 and finding.evidence[-1].key == "evidence.cross_run_chance"
    fix_keys = [f.key for f in finding.fixes]
    assert fix_keys == ["fixes.inspect_batches", "fixes.rollback_spike"]
    assert finding.fixes[1].params == {"step": chosen[0][2][0], "target": chosen[0][2][0] - 100}


def test_runs_with_different_batch_sizes_are_aligned_on_the_samples_read():
    """Batch 24 and batch 48 on the same order meet the corrupted samples at iterations 300 and 150."""
    small, large = _runs(corrupted=True)[0], _runs(corrupted=True, batch=48)[0]
    found = shared_spikes([(name, load_paths([path])) for name, path, _ in (small, large)])
    (finding,) = found
    assert finding.by_samples
    assert (
        [g.position for g in finding.shared] == [it * 24 for it in small[2]] == [it * 48 for it in large[2]]
    )
    assert [sorted(m.spike.step for m in g.spikes) for g in finding.shared] == [
        sorted(steps) for steps in zip(small[2], large[2], strict=True)
    ]
    assert finding.evidence[0].key == "evidence.cross_run_spike_samples"
    rollbacks = [f.params for f in finding.fixes if f.key == "fixes.rollback_spike_run"]
    assert [(r["n"], r["step"], r["target"]) for r in rollbacks] == [
        (1, small[2][0], small[2][0] - 100),
        (2, large[2][0], large[2][0] - 100),
    ]


def test_a_run_whose_batch_ramps_up_is_placed_by_its_own_sample_counter():
    """The Megatron-style run ramps its batch from 8 to 48 and meets the corrupted samples at iterations
    296 and 386; only its `consumed samples` counter says where it is: step x the first line's batch (8)
    would put those spikes near samples 2,400 and 3,100."""
    megatron = next(r for r in _runs(corrupted=True, batch=48) if "megatron" in r[0])
    assert megatron[2] == [296, 386]
    log = load_paths([megatron[1]])
    assert log.meta.format == "megatron" and log.meta.batch_size == 8
    order = data_order(log)
    assert order.steady is None  # ramping up: the steps are no position
    assert order.samples(296) == 7184  # iteration 296 read samples 7184-7231, the shard starts at 7200
    for small in _runs(corrupted=True):
        (finding,) = shared_spikes([(small[0], load_paths([small[1]])), (megatron[0], log)])
        assert finding.by_samples
        assert [sorted(m.spike.step for m in g.spikes) for g in finding.shared] == [[296, 300], [386, 480]]
        assert [g.position for g in finding.shared] == [7184, 11504]
    without_counter = dataclasses.replace(
        log, metrics=log.metrics[log.metrics["metric"] != "consumed_samples"]
    )
    assert data_order(without_counter).steady == 8
    small = _runs(corrupted=True)[0]
    assert shared_spikes([(small[0], load_paths([small[1]])), (megatron[0], without_counter)]) == []


def test_a_data_order_reads_its_counter_between_and_past_the_logged_points():
    every_ten = DataOrder(None, (np.array([10, 20]), np.array([960.0, 1920.0])))
    assert every_ten.steady == 96
    assert [every_ten.samples(s) for s in (1, 11, 25)] == [0, 960, 2304]  # samples read before the step
    ramp = DataOrder(8, (np.array([1, 2, 3]), np.array([8.0, 24.0, 48.0])))
    assert ramp.steady is None and ramp.samples(3) == 24
    huge = DataOrder(8, (np.array([10, 20]), np.array([80.0, 1e300])))  # a mangled counter: no error
    assert huge.steady is None and huge.samples(30) > 0
    assert DataOrder(24).samples(300) == 7200 and DataOrder().known is False


def test_three_runs_give_one_finding_with_every_run_at_each_step():
    chosen = _runs(corrupted=True)
    found = shared_spikes([(name, load_paths([path])) for name, path, _ in chosen])
    assert len(found) == 1
    assert [len(g.spikes) for g in found[0].shared] == [3] * len(chosen[0][2])


def test_quiet_when_spikes_do_not_coincide():
    clean = [(name, load_paths([path])) for name, path, _ in _runs(corrupted=False)]
    bad = [(name, load_paths([path])) for name, path, _ in [*_runs(True), *_runs(True, batch=48)]]
    assert shared_spikes(clean) == []
    for run in bad:  # a run with spikes beside runs without them: nothing coincides
        assert shared_spikes([run, *clean]) == []
        assert shared_spikes([run]) == []  # one run is no comparison


def test_cross_run_rule_is_no_rule_of_the_diagnosis():
    ids = {r.id for r in all_rules()}
    assert not ids & {r.id for r in CROSS_RUN_RULES}
    path = _runs(corrupted=True)[0][1]
    log = load_paths([path])
    before = diagnose(log).to_json()
    shared_spikes([("a", log), ("b", load_paths([_runs(corrupted=True)[1][1]]))])
    assert diagnose(log).to_json() == before


def test_cli_prints_the_finding_after_the_runs_and_lists_it_in_each_runs_json(capsys):
    paths = [str(path) for _, path, _ in _runs(corrupted=True)[:2]]
    status = cli.main(paths)
    text = capsys.readouterr().out
    assert status == cli.EXIT_PROBLEM  # each run is spiky on its own (LD108): the runs set the exit code
    across = text[text.index("== Across the 2 runs") :]
    assert "[LD501 warning]" in across and "Step 300: a loss spike in 2 of the 2 runs." in across
    line = _line_of(Path(paths[0]), 300)
    assert f"bad_data_seed1_lr1e-3.log:{line}" in across  # the line that printed the spike
    cli.main([*paths, "--json", "--lang", "zh"])
    reports = json.loads(capsys.readouterr().out)
    assert [[f["rule"] for f in r["cross_run"]] for r in reports] == [["LD501"], ["LD501"]]
    assert reports[0]["cross_run"][0]["steps"] == [300, 480]
    assert reports[0]["cross_run"][0]["samples"] is None  # aligned on steps
    assert 0 < reports[0]["cross_run"][0]["chance"] < 0.01


def test_cli_is_quiet_for_runs_without_shared_spikes(capsys):
    cli.main([str(path) for _, path, _ in _runs(corrupted=False)])
    assert "LD501" not in capsys.readouterr().out
    cli.main([*(str(path) for _, path, _ in _runs(corrupted=False)), "--json"])
    assert all(r["cross_run"] == [] for r in json.loads(capsys.readouterr().out))


@pytest.mark.skipif(not (REAL_LOGS / "MANIFEST.csv").exists(), reason="real logs absent")
def test_quiet_on_healthy_real_logs_of_the_same_format():
    """Every pair of healthy real runs of one format: spikes of unrelated runs do not line up. All the
    runs of a format are given at once; a finding would name any pair whose spikes coincide."""
    with REAL_LABELS.open(newline="", encoding="utf-8") as fh:
        healthy = [r["path"] for r in csv.DictReader(fh) if r["symptom"] == "healthy"]
    by_format: dict[str, list[tuple[str, object]]] = defaultdict(list)
    for path in healthy:
        try:
            log = load_paths([REAL_LOGS / path])
        except ParseError:
            continue
        by_format[log.meta.format].append((path, log))
    groups = {fmt: runs for fmt, runs in by_format.items() if len(runs) >= 2}
    assert sum(len(runs) for runs in groups.values()) >= 10  # enough real runs to mean something
    for fmt, runs in groups.items():
        assert shared_spikes(runs) == [], fmt


CORPUS = REPO / "sample_logs" / "corpus" / "runs"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the corpus is absent")
def test_a_coincidence_likely_by_chance_is_not_reported():
    """Two unrelated corpus runs (different nets, data seeds and batch sizes): the onset of the one's
    blow-up and of one of the other's two spikes fall within one batch of 64 samples, which short runs
    with these spike counts do by chance 4 times in 100: no finding."""
    names = ("cnn_043_garbage_every17", "vgg_063_warmup_to_lr_x100")
    runs = [(name, load_paths([CORPUS / name])) for name in names]
    per_run = [_spikes_of(name, log, fitted.PARAMS) for name, log in runs]
    onsets = [[r.order.samples(_onset(s)) for s, _, _ in r.spikes] for r in per_run]
    tolerance = max(r.interval * r.order.steady for r in per_run)
    assert any(abs(a - b) < tolerance for a in onsets[0] for b in onsets[1])  # they do line up
    assert shared_spikes(runs) == []


def test_a_run_whose_spike_detector_fails_is_left_out_not_raised(monkeypatch):
    """The run's own diagnosis reports LD112's error; the comparison goes on without that run."""
    bad = _runs(corrupted=True)[:3]
    logs = [(name, load_paths([path])) for name, path, _ in bad]
    broken = logs[2][1]
    real = cross_run.loss_spikes

    def failing(ctx):
        if ctx.log is broken:
            raise ValueError("detector failed")
        return real(ctx)

    monkeypatch.setattr(cross_run, "loss_spikes", failing)
    (finding,) = shared_spikes(logs)
    assert {m.run for g in finding.shared for m in g.spikes} == {0, 1}
