"""A standalone HTML report (curves + diagnosis) that opens offline: plotly.js is embedded inline.

Every string that comes from a log (file names, quoted lines, metric names, parameter values) and
every catalogue text is HTML-escaped; quoted log lines go in <pre> blocks.
"""

from __future__ import annotations

from functools import partial
from html import escape

from diagnostics.cross_run import CrossRunFinding, shared_spikes
from i18n import t
from present import panels
from present.figures import SEVERITY_COLOURS, ChartSettings, RunView, build_figure

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1200px;
color:#111827;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}
h3{font-size:1.05rem;margin-bottom:.3rem}
.verdict{padding:.8rem 1rem;border-radius:.5rem;background:#fef2f2;border-left:5px solid #dc2626}
.verdict.healthy{background:#f0fdf4;border-left-color:#16a34a}
.muted{color:#6b7280;font-size:.9rem}
pre{background:#f6f8fa;padding:.5rem .75rem;border-radius:.375rem;overflow-x:auto;font-size:.85rem}
table{border-collapse:collapse;font-size:.9rem} td,th{border-bottom:1px solid #e5e7eb;padding:.25rem .6rem;
text-align:left}
.badge{display:inline-block;padding:0 .45rem;border-radius:.3rem;color:white;font-size:.8rem}
"""


def build_report(runs: list[RunView], settings: ChartSettings, across: list[CrossRunFinding]) -> str:
    """The report of `runs`, with what they show together (`across_runs(runs)`, computed once by the
    caller for the page, this report and the JSON)."""
    lang = settings.lang
    figure, failure = panels.chart_or_message(partial(build_figure, runs, settings), lang)
    if figure is None:  # the report still carries the diagnosis
        chart = f'<p class="verdict">{escape(failure or "")}</p>'
    else:
        chart = figure.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    body = [f"<h1>{escape(t('ui.app_title', lang))}</h1>", chart]
    if len(runs) > 1:
        body.extend(_cross_run_html(across, lang))
    for run in runs:
        body.append(f"<h2>{escape(run.label)}</h2>")
        body.append(f'<p class="muted">{escape(", ".join(run.log.sources))}</p>')
        if run.diagnosis is not None:
            body.extend(_diagnosis_html(run, lang))
        body.extend(_facts_html(run, lang))
    return (
        f'<!DOCTYPE html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f"<title>{escape(t('ui.report.title', lang))}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def across_runs(runs: list[RunView]) -> list[CrossRunFinding]:
    """What only the runs together show (LD5xx), for the page, the JSON and this report alike."""
    return shared_spikes([(run.label, run.log) for run in runs]) if len(runs) > 1 else []


def json_report(runs: list[RunView], across: list[CrossRunFinding], lang: str) -> list[dict]:
    """The page's "Diagnosis (JSON)": each diagnosed run, with the cross-run findings that concern it
    (the CLI's `--json` layout)."""
    out = []
    for run in runs:
        if run.diagnosis is None:
            continue
        report = run.diagnosis.to_json(lang) | {"run": run.label}
        if len(runs) > 1:
            report["cross_run"] = [f.to_json(lang) for f in across if f.involves(run.label)]
        out.append(report)
    return out


def _cross_run_html(found: list[CrossRunFinding], lang: str) -> list[str]:
    out = [f"<h2>{escape(t('ui.cross_run.title', lang))}</h2>"]
    if not found:
        return [*out, f'<p class="muted">{escape(t("ui.cross_run.none", lang))}</p>']
    for f in found:
        colour = SEVERITY_COLOURS.get(f.severity, "#6b7280")
        out.append(
            f'<p><span class="badge" style="background:{colour}">{escape(f.rule)}</span> '
            f"<strong>{escape(f.title(lang))}</strong></p>"
        )
        out.extend(_evidence_html(panels.evidence_views(f.evidence, lang)))
        out.extend(f"<p>→ {escape(fix.text(lang))}</p>" for fix in f.fixes)
    return out


def _evidence_html(items: list[panels.EvidenceView]) -> list[str]:
    out = ["<ul>"]
    for e in items:
        out.append(f"<li>{escape(e.text)}")
        if e.line:
            where = f"{e.source}:{e.line}: {e.quote or ''}".rstrip()
            out.append(f"<pre>{escape(where)}</pre>")
        out.append("</li>")
    out.append("</ul>")
    return out


def _diagnosis_html(run: RunView, lang: str) -> list[str]:
    assert run.diagnosis is not None
    v = panels.verdict(run.diagnosis, lang)
    out = [
        f'<div class="verdict{" healthy" if v.healthy else ""}"><strong>{escape(v.sentence)}</strong></div>'
    ]
    causes = panels.causes(run.diagnosis, lang)
    if causes:
        out.append(f"<h3>{escape(t('ui.causes', lang))}</h3><ol>")
        for cause in causes:
            rules = escape(", ".join(cause.rules))
            out.append(f"<li><strong>{escape(cause.title)}</strong> <span class='muted'>")
            out.append(f"{round(100 * cause.confidence)}% · {rules}</span>")
            out.extend(_evidence_html(cause.evidence))
            for fix in cause.fixes:
                out.append(f"<p>→ {escape(fix.text)}</p>")
                if fix.snippet:
                    out.append(f"<pre>{escape(fix.snippet)}</pre>")
            out.append("</li>")
        out.append("</ol>")
    found = panels.findings(run.diagnosis, lang)
    if found:
        out.append(f"<h3>{escape(t('ui.findings', lang))}</h3>")
        for f in found:
            colour = SEVERITY_COLOURS.get(f.severity, "#6b7280")
            out.append(
                f'<p><span class="badge" style="background:{colour}">{escape(f.rule)}</span> '
                f"<strong>{escape(f.title)}</strong></p>"
            )
            out.extend(_evidence_html(f.evidence))
    unchecked = panels.unchecked(run.diagnosis, lang)
    if unchecked:
        out.append(f"<h3>{escape(t('ui.unchecked.title', lang, count=len(unchecked)))}</h3>")
        out.append(f"<p class='muted'>{escape(t('ui.unchecked.intro', lang))}</p><ul>")
        for item in unchecked:
            title = f"{escape(item.rule)} {escape(item.title)}"
            out.append(f"<li><strong>{title}</strong>: {escape(item.needs)}</li>")
        out.append("</ul>")
    return out


def _facts_html(run: RunView, lang: str) -> list[str]:
    rows = panels.facts(run.log, lang)
    out = [f"<h3>{escape(t('ui.facts', lang))}</h3><table>"]
    out += [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows]
    out.append("</table>")
    warnings = panels.warnings(run.log, lang)
    if warnings:
        out.append(f"<h3>{escape(t('ui.warnings.title', lang))}</h3>")
        out.append(f"<pre>{escape(chr(10).join(warnings))}</pre>")
    return out
