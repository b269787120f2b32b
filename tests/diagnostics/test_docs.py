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
