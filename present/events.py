"""The events table of a run (parsers/events.py) as the page shows it: localised kinds and headers.

`detail` is the log's own text; the page shows this table with st.dataframe, which renders nothing.
"""

from __future__ import annotations

import pandas as pd

from i18n import t
from parsers.model import TrainingLog

MAX_ROWS = 1000  # a run with a million overflow lines: the first thousand, and the count says the rest


def kind_label(kind: str, lang: str) -> str:
    return t(f"ui.event.{kind}", lang)


def table(log: TrainingLog, lang: str, limit: int = MAX_ROWS) -> pd.DataFrame:
    """Step, kind, value, detail, line and file of the first `limit` events, headers in `lang`."""
    events = log.events.head(limit)
    return pd.DataFrame(
        {
            t("ui.events.step", lang): events["step"].to_numpy(),
            t("ui.events.kind", lang): [kind_label(str(kind), lang) for kind in events["kind"]],
            t("ui.events.value", lang): events["value"].to_numpy(),
            t("ui.events.detail", lang): events["detail"].to_numpy(dtype=object),
            t("ui.events.line", lang): events["line"].to_numpy(),
            t("ui.events.source", lang): events["source"].astype(str).to_numpy(dtype=object),
        }
    )


def summary(log: TrainingLog, lang: str) -> str:
    """`12 events: 10 loss-scaler overflows, 2 checkpoints saved` (kinds by count)."""
    counts = log.events["kind"].value_counts(sort=True)
    parts = [f"{int(n)} × {kind_label(str(kind), lang)}" for kind, n in counts.items() if n]
    return t("ui.events.summary", lang, count=len(log.events), kinds=", ".join(parts))
