"""The catalogue: every key in both languages with the same placeholders, and every rule, cause,
symptom and every evidence/fix key the engine uses has its texts."""

import re
from pathlib import Path

import pytest

from diagnostics.model import CAUSES, SYMPTOMS
from diagnostics.registry import all_rules
from i18n import LANGUAGES, catalogue, placeholders

ROOT = Path(__file__).resolve().parents[1]
RULE_PARTS = ("title", "summary", "why", "example", "fix")


def test_every_key_has_every_language_with_the_same_placeholders():
    for key, entry in catalogue().items():
        assert set(entry) == set(LANGUAGES), key
        assert all(text.strip() for text in entry.values()), key
        assert placeholders(entry["en"]) == placeholders(entry["zh"]), key


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
