"""present.safe: user-controlled text inside Markdown becomes a code span that shows it verbatim, and
inside plotly labels an entity-escaped string. (The browser test checks what chromium renders.)"""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from present.safe import md_literal, one_line, plot_text

HOSTILE = [
    "[x](https://evil.example) ![](https://evil.example/i.png)",
    "<img src=x onerror=alert(1)>.log",
    "**bold** _em_ :red[colour] :material/home: $x^2$ <https://evil.example> www.evil.example",
    "`code` and ``two`` ```three```",
    "`starts with a backtick",
    "ends with a backtick`",
    "line one\nline two\r\n# heading\n> quote\n- item",
    "   ",
    "a" * 5000,
]


def unwrap(span: str) -> str:
    """The text a CommonMark renderer shows for a code span (spec 6.1: the fence, then one space from
    each end when both ends are spaces and the content is not all spaces)."""
    fence = re.match(r"`+", span).group()
    assert span.endswith(fence) and len(span) > 2 * len(fence)
    inner = span[len(fence) : -len(fence)]
    if inner.startswith(" ") and inner.endswith(" ") and inner.strip(" "):
        inner = inner[1:-1]
    return inner


@pytest.mark.parametrize("name", HOSTILE)
def test_markdown_code_span_shows_the_name_verbatim(name):
    span = md_literal(name)
    fence = re.match(r"`+", span).group()
    assert "\n" not in span and "\r" not in span
    # No backtick run inside is as long as the fence, so the span cannot be closed early.
    assert all(len(run) < len(fence) for run in re.findall(r"`+", unwrap(span)))
    assert unwrap(span) == one_line(name)


@given(st.text(max_size=200))
def test_any_text_round_trips_through_the_code_span(text):
    span = md_literal(text)
    fence = re.match(r"`+", span).group()
    inner = unwrap(span)
    assert all(len(run) < len(fence) for run in re.findall(r"`+", inner))
    assert inner == (one_line(text) or " ")


def test_control_characters_become_one_space():
    assert one_line("a\n\r\tb\x00c\u2028d") == "a b c d"


@pytest.mark.parametrize("name", HOSTILE)
def test_plotly_text_has_no_tag_and_decodes_to_the_name(name):
    text = plot_text(name)
    assert "<" not in text and ">" not in text and "\n" not in text
    assert html.unescape(text) == one_line(name)
