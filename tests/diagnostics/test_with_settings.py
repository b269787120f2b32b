"""The printed-arguments measurement's inputs (`bench/with_settings.py`): the recipes it rebuilds are
the runs' own (the namespace a print-style run printed comes out again), and a curves-only run of the
training split gains its settings from the rebuilt arguments. Its figures are quoted in the README."""

from __future__ import annotations

from pathlib import Path

from bench.with_settings import config, judge, namespace_line, printed_namespaces, recipes
from diagnostics.evaluate import read_labels, resolve_run_path
from diagnostics.split import CORPUS, paths_of

RUN = "runs/cnn_061_frozen_random_backbone"  # training split, TensorBoard events only


def test_rebuilt_recipes_print_the_namespace_the_runs_printed():
    known = recipes()
    rows = read_labels(CORPUS / "labels.csv", paths_of("train", CORPUS))
    seen, same = printed_namespaces(rows, CORPUS, known)
    assert seen >= 20 and same == seen


def test_a_curves_only_run_is_judged_alone_and_with_its_arguments():
    recipe = recipes()[Path(RUN).name]
    out = judge((str(resolve_run_path(CORPUS, RUN)), namespace_line(config(recipe))))
    assert out is not None
    assert out["alone"]["predicted"] == "healthy"  # the curves alone cannot show frozen random layers
    assert out["both"]["ranked"][:1] == ["no_pretraining"]


def test_a_log_that_states_its_settings_is_left_out():
    run = "runs/fcn_022_frozen_random_backbone"  # print style: its log printed the namespace
    recipe = recipes()[Path(run).name]
    assert judge((str(resolve_run_path(CORPUS, run)), namespace_line(config(recipe)))) is None
