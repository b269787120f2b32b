"""The catalogue: every key in both languages with the same placeholders, and every rule, cause,
symptom and every evidence/fix key the engine uses has its texts."""

import re
from pathlib import Path

import numpy as np
import pytest

from diagnostics.model import CAUSES, SYMPTOMS
from diagnostics.registry import all_rules
from i18n import LANGUAGES, catalogue, placeholders, t

ROOT = Path(__file__).resolve().parents[1]
RULE_PARTS = ("title", "summary", "why", "example", "fix")


def test_every_key_has_every_language_with_the_same_placeholders():
    for key, entry in catalogue().items():
        assert set(LANGUAGES) <= set(entry) <= set(LANGUAGES) | {f"{lang}_one" for lang in LANGUAGES}, key
        assert all(text.strip() for text in entry.values()), key
        assert placeholders(entry["en"]) == placeholders(entry["zh"]), key
        for lang in LANGUAGES:
            if f"{lang}_one" in entry:  # a singular only where the text counts something
                assert "count" in placeholders(entry[lang]), key
                assert placeholders(entry[f"{lang}_one"]) == placeholders(entry[lang]), key


def test_a_count_of_one_reads_in_the_singular():
    numbers = {"value": 9.1, "step": 40, "base": 2.3}
    assert t("evidence.spikes", "en", count=1, **numbers).startswith("1 isolated spike: 9.1 at step 40")
    assert t("evidence.spikes", "en", count=np.int64(1), **numbers).startswith("1 isolated spike:")
    assert t("evidence.spikes", "en", count=2, **numbers).startswith("2 isolated spikes; the largest")
    assert t("evidence.spikes", "zh", count=1, **numbers).startswith("1 个孤立尖峰：第 40 步")
    assert "最大的一个" in t("evidence.spikes", "zh", count=3, **numbers)
    assert (
        t("ui.events.summary", "en", count=1, kinds="1 × checkpoint saved") == "1 event: 1 × checkpoint saved"
    )


def test_chinese_texts_are_chinese():
    for key, entry in catalogue().items():
        if (
            key.startswith(("rules.", "causes.", "symptoms.", "evidence.", "fixes."))
            and key != "evidence.lr_value"
        ):
            assert re.search(r"[\u4e00-\u9fff]", entry["zh"]), key


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.id)
def test_every_rule_is_documented(rule):
    for part in RULE_PARTS:
        assert f"rules.{rule.id}.{part}" in catalogue()


def test_every_symptom_and_cause_has_title_and_summary():
    for name in SYMPTOMS:
        assert {f"symptoms.{name}.title", f"symptoms.{name}.summary"} <= set(catalogue())
    for name in CAUSES:
        assert {f"causes.{name}.title", f"causes.{name}.summary"} <= set(catalogue())


def test_every_catalogue_key_named_in_the_engine_exists():
    used = set()
    for path in (ROOT / "diagnostics").rglob("*.py"):
        used |= set(
            re.findall(r'"((?:evidence|fixes|cli|docs)\.[a-z_.]+)"', path.read_text(encoding="utf-8"))
        )
    assert used, "no keys found: the pattern is wrong"
    missing = sorted(
        k for k in used if k not in catalogue() and not any(c.startswith(k + ".") for c in catalogue())
    )
    assert missing == []


def test_rule_ids_map_onto_symptoms_and_causes():
    rules = all_rules()
    assert {r.symptom for r in rules if r.symptom} <= set(SYMPTOMS) - {"healthy"}
    assert {r.cause for r in rules if r.cause} == set(CAUSES)
    assert set(SYMPTOMS) - {"healthy"} <= {r.symptom for r in rules if r.symptom}
