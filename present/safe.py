"""The one escaping path for user-controlled text (file names, run labels, metric names, share labels,
text quoted from logs) that has to sit inside a rendered string: Streamlit Markdown or a plotly label.

Elsewhere the page shows such text with st.text / st.code / st.dataframe, which render nothing.
"""

from __future__ import annotations

import html
import re

# Line breaks and other control characters: a name is one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_BACKTICKS = re.compile(r"`+")


def one_line(text: str) -> str:
    """Control characters (line breaks included) replaced by one space each run."""
    return _CONTROL.sub(" ", str(text))


def md_literal(text: str) -> str:
    """`text` as a Markdown code span: shown verbatim in Streamlit Markdown (st.error, st.markdown, widget
    labels). Inside a code span no link, image, HTML tag, emphasis, :colour[...] directive, :icon: or
    $math$ forms; the span's fence is one backtick longer than the longest run in the text. CommonMark
    strips one space from each end of a span that starts and ends with one (unless it is all spaces),
    so such text, and text that starts or ends with a backtick, is padded with a space."""
    text = one_line(text) or " "
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    edges = text[0] + text[-1]
    pad = " " if "`" in edges or (edges == "  " and text.strip(" ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def plot_text(text: str) -> str:
    """`text` for a plotly name, title, annotation or hover text: plotly.js renders a subset of HTML
    (<a href>, <b>, <br>, ...) in these and decodes entities, so the text is entity-escaped and shown
    as typed. Hover templates must not embed it: `%{...}` would be substituted there."""
    return html.escape(one_line(text))
