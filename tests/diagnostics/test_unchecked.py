"""Checks that could not run for want of settings (`Diagnosis.unchecked`): said for curves-only logs,
never for a log that describes its net, and each with the settings it reads in both languages."""

from __future__ import annotations

import pytest

from diagnostics import diagnose
from diagnostics.__main__ import render_text
from diagnostics.registry import all_rules
from diagnostics.split import CORPUS
from i18n import LANGUAGES, has, t
from parsers import load_paths
from present import panels
from present.figures import ChartSettings, RunView
from present.report_html import build_report

SAMPLES = CORPUS.parent
# Curves-only logs of the corpus's training split in three formats: runs whose frozen layers were never
# loaded with weights, which the curves alone cannot tell from a healthy run.
CURVES_ONLY = {
    "tfevents": CORPUS / "runs/cnn_061_frozen_random_backbone",
    "csv": CORPUS / "runs/cnn_037_frozen_random_backbone",
    "trainer_state": CORPUS / "runs/resnet_032_frozen_random_backbone",
}
SETTINGS_RULES = [r for r in all_rules() if r.meta or r.any_meta]


@pytest.mark.parametrize("kind", sorted(CURVES_ONLY))
def test_curves_only_logs_say_which_checks_could_not_run(kind: str):
    d = diagnose(load_paths([CURVES_ONLY[kind]]))
    assert {"LD301", "LD305", "LD310", "LD311"} <= set(d.unchecked)
    assert set(d.unchecked) <= set(d.not_applicable)
    assert not {f.rule for f in d.findings} & set(d.unchecked)


def test_a_stated_setting_takes_its_checks_off_the_list():
    """trainer_state.json states the batch size: the checks that read it ran (LD207) or had one of their
    settings (LD304, LD314), so they are not listed; the tfevents log states none."""
    with_batch = diagnose(load_paths([CURVES_ONLY["trainer_state"]]))
    without = diagnose(load_paths([CURVES_ONLY["tfevents"]]))
    assert not {"LD207", "LD304", "LD314"} & set(with_batch.unchecked)
    assert {"LD207", "LD304", "LD314"} <= set(without.unchecked)


@pytest.mark.parametrize("name", ["case1_resnet_frozen_bn", "case3_vgg_scaled", "case2_fcn_lr1e-4"])
def test_a_log_that_describes_its_net_lists_nothing(name: str):
    """A Caffe log with its net: an empty list of BatchNorm or frozen layers means there are none, so
    the checks that found nothing are not 'unchecked' although they were not applicable."""
    d = diagnose(load_paths([SAMPLES / name]))
    assert d.unchecked == []
    assert any(r.id in d.not_applicable for r in SETTINGS_RULES)


def test_every_settings_check_says_what_it_reads_in_every_language():
    for rule in SETTINGS_RULES:
        texts = [t(f"rules.{rule.id}.needs", lang) for lang in LANGUAGES]
        assert has(f"rules.{rule.id}.needs") and all(texts), rule.id
        assert len(set(texts)) == len(texts), rule.id  # translated, not copied


def test_page_cli_and_json_show_the_list():
    log = load_paths([CURVES_ONLY["tfevents"]])
    d = diagnose(log)
    assert d.healthy  # a fault the curves cannot show: the list is what the user gets
    for lang in LANGUAGES:
        shown = panels.unchecked(d, lang)
        assert [v.rule for v in shown] == sorted(d.unchecked)
        ld310 = next(v for v in shown if v.rule == "LD310")
        assert ld310.title == t("rules.LD310.title", lang) and ld310.needs == t("rules.LD310.needs", lang)
    line = t("cli.unchecked", "en", rules=", ".join(d.unchecked))
    assert line in render_text(log, d, "en").splitlines()
    assert d.to_json()["unchecked"] == d.unchecked


def test_the_cli_names_each_check_once():
    """A check that lacks only settings is said under 'not checked', not again under 'not applicable'."""
    log = load_paths([CURVES_ONLY["tfevents"]])
    d = diagnose(log)
    text = render_text(log, d, "en")
    for rule in d.not_applicable:
        said = [line for line in text.splitlines() if rule in line.split(": ", 1)[-1].split(", ")]
        assert len(said) == 1, (rule, said)


def test_offline_report_lists_them():
    log = load_paths([CURVES_ONLY["csv"]])
    d = diagnose(log)
    page = build_report([RunView("run", log, d)], ChartSettings(lang="zh"), [])
    assert t("ui.unchecked.title", "zh", count=len(d.unchecked)) in page
    assert t("rules.LD310.title", "zh") in page
