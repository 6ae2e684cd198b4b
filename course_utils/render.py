"""Markdown to safe HTML, for the quiz widget and the app (an LLM's text is never run)."""

from __future__ import annotations

import functools


@functools.cache
def _renderer():
    """Build mistune's renderer once (escaping raw HTML)."""
    import mistune

    return mistune.create_markdown(escape=True)


def markdown_html(text: str) -> str:
    """Render Markdown as HTML, showing any raw HTML in it as text (never run).

    Args:
        text: Markdown text, e.g. a model answer or an LLM's explanation.

    Returns:
        HTML text.
    """
    return _renderer()(text.strip())
