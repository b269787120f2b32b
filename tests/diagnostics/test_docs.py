"""docs/rules.md is generated from the registry + catalogue and must be committed up to date."""

from diagnostics import docs
from diagnostics.registry import all_rules


def test_committed_rule_docs_are_up_to_date():
    assert docs.DOCS_PATH.read_text(encoding="utf-8") == docs.render(), "run: python -m diagnostics.docs"


def test_every_rule_has_an_anchor_and_both_languages():
    text = docs.render()
    for rule in all_rules():
        assert f'<a id="{rule.id.lower()}"></a>' in text
    assert "(English)" in text and "(简体中文)" in text


def test_an_early_warning_the_fit_switched_off_says_so_in_its_section():
    from diagnostics.early_warning import PARAMS, WARNING_RULES

    text = docs.render()
    sections = {w.id: text.split(f"### {w.id} `")[1].split("\n### ")[0] for w in WARNING_RULES}
    for w in WARNING_RULES:
        off = getattr(PARAMS, f"{w.id.lower()}_on", True) is False
        assert ("Switched off by the fit" in sections[w.id]) == off, w.id
        assert ("已被拟合关闭" in sections[w.id]) == off, w.id
