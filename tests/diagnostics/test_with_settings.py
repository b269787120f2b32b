"""The printed-arguments measurement's inputs (`bench/with_settings.py`): the recipes it rebuilds are
the runs' own (the namespace a print-style run printed comes out again), a curves-only run of the
training split gains its settings from the rebuilt arguments, and a log that states its settings is
judged only as it is. Its figures are quoted in the README."""

from __future__ import annotations

from bench.with_settings import arguments, judge, printed_namespaces, recipes
from diagnostics.evaluate import read_labels, resolve_run_path
from diagnostics.split import CORPUS, paths_of


def test_rebuilt_recipes_print_the_namespace_the_runs_printed():
    rows = read_labels(CORPUS / "labels.csv", paths_of("train", CORPUS))
    seen, same = printed_namespaces(rows, CORPUS, recipes())
    assert seen >= 20 and same == seen


def test_a_curves_only_run_is_judged_alone_and_with_its_arguments():
    run = "runs/cnn_061_frozen_random_backbone"  # training split, TensorBoard events only
    out = judge((str(resolve_run_path(CORPUS, run)), arguments(recipes(), run)))
    assert out is not None and out["curves_only"] and out["unchecked"]
    assert out["alone"]["predicted"] == "healthy"  # the curves alone cannot show frozen random layers
    assert out["both"]["ranked"][:1] == ["no_pretraining"]
    assert out["logged"] == out["both"]  # the same arguments logged into an event file with add_text


def test_a_log_that_states_its_settings_is_judged_as_it_is():
    run = "runs/fcn_022_frozen_random_backbone"  # print style: its log printed the namespace
    out = judge((str(resolve_run_path(CORPUS, run)), arguments(recipes(), run)))
    assert out is not None and not out["curves_only"] and "both" not in out
    assert out["alone"]["ranked"][:1] == ["no_pretraining"]
