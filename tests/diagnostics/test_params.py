"""Every number a rule judges with is a documented `Params` field; the fit's grids are sane."""

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from diagnostics.params import DEFAULT_PARAMS, Params, fields_of_rule, tunable_fields
from diagnostics.registry import all_rules

RULES_DIR = Path(__file__).resolve().parents[2] / "diagnostics" / "rules"
# Numbers that are structure, not judgement: counts and indices, minimum lengths of 2-3 points,
# rounding digits, percent (100, and 1.5 as "values above this are percentages"), per-1000-steps,
# division guards, and the "unknown batch size is large" sentinel.
STRUCTURAL = {0, 1, 2, 3, 4, 100, 1000, 1e-12, 1e-30, 1.5, 99}
SYMPTOM_FAMILIES = ("_common", "blowup", "stall", "shape", "generalisation", "facts", "causes", "config")


def _ids(rule) -> tuple[str, ...]:
    return rule if isinstance(rule, tuple) else (rule,)


def test_every_field_says_which_rule_uses_it_and_what_it_judges():
    known = {r.id for r in all_rules()}
    for f in fields(Params):
        assert f.metadata.get("doc"), f.name
        assert "rule" in f.metadata, f.name
        assert set(_ids(f.metadata["rule"])) <= known, f.name


def test_grids_hold_the_default_and_three_to_seven_values():
    tunable = tunable_fields()
    assert len(tunable) >= 60
    for f in tunable:
        grid = f.metadata["grid"]
        assert 3 <= len(grid) <= 7 and len(set(grid)) == len(grid), f.name
        assert getattr(DEFAULT_PARAMS, f.name) in grid, f.name


@pytest.mark.parametrize("rule_id", [f"LD10{i}" for i in range(1, 9)] + [f"LD2{i:02d}" for i in range(1, 11)])
def test_symptom_and_cause_rules_have_tunable_parameters(rule_id):
    assert any("grid" in f.metadata for f in fields_of_rule(rule_id))


@pytest.mark.parametrize("module", SYMPTOM_FAMILIES)
def test_rules_hold_no_judging_literals(module):
    tree = ast.parse((RULES_DIR / f"{module}.py").read_text(encoding="utf-8"))
    found = [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and type(node.value) in (int, float)
        and node.value not in STRUCTURAL
    ]
    assert not found, f"move these numbers to Params: {found}"
