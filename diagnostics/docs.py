"""Generate `docs/rules.md` from the rule registry and the catalogue: `python -m diagnostics.docs`.

Like ruff's generate_docs: the registry gives ids, names and requirements, the catalogue gives the
texts in both languages. Each rule has an anchor (`docs/rules.md#ld203`) and lists the `Params` fields
it judges with (from their `rule` metadata), as ruff documents a rule's options: the value in force
(fitted on the corpus's training split, `diagnostics/fitted_params.json`), the hand-set prior it
started from, and the grid the fit chose among. `--check` exits 1 when the committed file is out of date.
"""

from __future__ import annotations

import sys
from dataclasses import Field, fields
from pathlib import Path

from diagnostics.cross_run import CROSS_RUN_RULES
from diagnostics.early_warning import PARAMS as WARNING_PARAMS
from diagnostics.early_warning import WARNING_RULES, WarningParams
from diagnostics.fitted import CALIBRATION, PARAMS
from diagnostics.params import DEFAULT_PARAMS, fields_of_rule, shared_fields
from diagnostics.registry import Rule, all_rules
from i18n import LANGUAGES, has, t

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
PARTS = ("summary", "needs", "why", "example", "fix", "notes")
KINDS = ("symptom", "cause", "config")


def _requires(rule: Rule, lang: str) -> str:
    needs = [f"`{c}`" for c in rule.curves] + [f"`meta.{m}`" for m in rule.meta]
    if rule.any_meta:
        needs.append(" | ".join(f"`meta.{m}`" for m in rule.any_meta))
    return ", ".join(needs) or t("docs.nothing", lang)


def _value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parameters(params: list[Field], fitted: object = PARAMS, priors: object = DEFAULT_PARAMS) -> list[str]:
    """A table of Params (or WarningParams) fields: name, fitted value, prior, what it judges, the
    fit's candidates."""
    if not params:
        return []
    out = ["| parameter | value | prior | judges | fit grid |", "|---|---|---|---|---|"]
    for f in params:
        grid = ", ".join(_value(v) for v in f.metadata.get("grid", ()))
        doc = f.metadata.get("doc", "").replace("|", "\\|")
        value, prior = getattr(fitted, f.name), getattr(priors, f.name)
        shown = f"**{_value(value)}**" if value != prior else _value(value)
        out.append(f"| `{f.name}` | {shown} | {_value(prior)} | {doc} | {grid} |")
    return out


def _texts(rule_id: str) -> list[str]:
    """A rule's title and documentation parts in every language (no blank line at the end)."""
    out = []
    for lang in LANGUAGES:
        out += ["", f"#### {t(f'rules.{rule_id}.title', lang)} ({LANGUAGES[lang]})", ""]
        for part in PARTS:
            key = f"rules.{rule_id}.{part}"
            if has(key):
                out += [f"**{t(f'docs.part.{part}', lang)}.** {t(key, lang)}", ""]
    while out[-1] == "":
        out.pop()
    return out


def render() -> str:
    rules = all_rules()
    out = [f"# {t('docs.title', 'en')} / {t('docs.title', 'zh')}", ""]
    for lang in LANGUAGES:
        out += [t("docs.intro", lang), ""]
    out.append("| id | name | en | zh |")
    out.append("|---|---|---|---|")
    for r in sorted(rules, key=lambda r: r.id):
        out.append(
            f"| [{r.id}](#{r.id.lower()}) | `{r.name}` | {t(f'rules.{r.id}.title', 'en')} | "
            f"{t(f'rules.{r.id}.title', 'zh')} |"
        )
    for w in (*WARNING_RULES, *CROSS_RUN_RULES):
        out.append(
            f"| [{w.id}](#{w.id.lower()}) | `{w.name}` | {t(f'rules.{w.id}.title', 'en')} | "
            f"{t(f'rules.{w.id}.title', 'zh')} |"
        )
    out += [
        "",
        "## Shared parameters",
        "",
        "The feature layer's and the runner's numbers, which every rule meets:",
        "",
    ]
    out += _parameters(shared_fields())
    c = CALIBRATION
    out += [
        "",
        "## Confidence",
        "",
        "Raw rule scores become calibrated confidence by Platt scaling, "
        "`p = sigmoid(a * logit(raw) + b)`, fitted on the training split (`python -m diagnostics.fit`). "
        f"A verdict below {c.uncertain_below:g} is shown as uncertain, with its two leading readings.",
        "",
        "| verdict | a | b |",
        "|---|---|---|",
        f"| a symptom other than healthy | {c.problem.a:g} | {c.problem.b:g} |",
        f"| healthy | {c.healthy.a:g} | {c.healthy.b:g} |",
        f"| the first cause | {c.cause.a:g} | {c.cause.b:g} |",
    ]
    for kind in KINDS:
        out += ["", f"## {t(f'docs.kind.{kind}', 'en')} / {t(f'docs.kind.{kind}', 'zh')}"]
        for r in sorted((r for r in rules if r.kind == kind), key=lambda r: r.id):
            out += ["", f'<a id="{r.id.lower()}"></a>', "", f"### {r.id} `{r.name}`", ""]
            target = r.symptom or r.cause
            if target:
                key = f"symptoms.{target}.title" if r.symptom else f"causes.{target}.title"
                out.append(f"- {t('docs.detects', 'en')}: `{target}` ({t(key, 'en')} / {t(key, 'zh')})")
            out.append(f"- {t('docs.requires', 'en')}: {_requires(r, 'en')}")
            out.append(f"- status: {r.status}, since {r.since}")
            params = fields_of_rule(r.id)
            if params:
                out += ["", "#### Parameters", "", *_parameters(params)]
            out += _texts(r.id)
    out += _warnings()
    out += _cross_run()
    return "\n".join(out) + "\n"


def _layer(kind: str, intro: str, rules: tuple) -> tuple[list[str], list[tuple[object, list[str]]]]:
    """A layer beside the diagnosis (early warnings, cross-run rules): its heading and intro, and for
    each rule its anchor, title line, requirements and severity."""
    head = ["", f"## {t(f'docs.kind.{kind}', 'en')} / {t(f'docs.kind.{kind}', 'zh')}", ""]
    for lang in LANGUAGES:
        head += [t(intro, lang), ""]
    return head, [
        (r, [f'<a id="{r.id.lower()}"></a>', "", f"### {r.id} `{r.name}`", "",
             f"- {t('docs.requires', 'en')}: {r.needs}", "- severity: warning"])
        for r in rules
    ]  # fmt: skip


def _warnings() -> list[str]:
    """The early-warning rules (LD4xx, `diagnostics.early_warning`)."""
    out, rules = _layer("warning", "docs.warnings_intro", WARNING_RULES)
    for w, lines in rules:
        params = [f for f in fields(WarningParams) if f.metadata["rule"] == w.id]
        switch = f"{w.id.lower()}_on"
        if getattr(WARNING_PARAMS, switch, True) is False:
            lines = [*lines, *(f"- {t('docs.switched_off', lang, field=switch)}" for lang in LANGUAGES)]
        out += [*lines, "", "#### Parameters", "", *_parameters(params, WARNING_PARAMS, WarningParams())]
        out += [*_texts(w.id), ""]
    while out[-1] == "":
        out.pop()
    return out


def _cross_run() -> list[str]:
    """The rules over several runs (LD5xx, `diagnostics.cross_run`)."""
    out, rules = _layer("cross_run", "docs.cross_run_intro", CROSS_RUN_RULES)
    for r, lines in rules:
        out += [*lines, *_texts(r.id)]
    return out


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.exists() else ""
        if current != text:
            print(f"{DOCS_PATH} is out of date: run python -m diagnostics.docs", file=sys.stderr)
            return 1
        return 0
    DOCS_PATH.parent.mkdir(exist_ok=True)
    DOCS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {DOCS_PATH} ({len(all_rules())} rules)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
