"""One place for the ipywidgets 7/8 differences: showing a wrapped widget, reading an upload.

Google Colab pins ipywidgets 7.7 while a fresh install gets 8.x, and the two differ where the
course touches them: a widget displays through ``_ipython_display_`` in 7 but
``_repr_mimebundle_`` in 8, and ``FileUpload.value`` is ``{name: {"metadata", "content"}}`` in
7 but a tuple of ``{"name", "content", ...}`` dicts in 8. ipywidgets is imported when used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The MIME type Jupyter front ends render a widget from.
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def ipywidgets_major() -> int:
    """Return the installed ipywidgets major version (7 in Colab, 8 in a fresh install)."""
    import ipywidgets

    return int(ipywidgets.__version__.split(".")[0])


def mimebundle(widget: Any, **kwargs: Any) -> dict:
    """Return the display bundle of an ipywidgets widget in either version.

    ipywidgets 8 has ``_repr_mimebundle_``; ipywidgets 7 builds the same bundle inside
    ``_ipython_display_`` only, so it is rebuilt here the way ipywidgets 7 does.

    Args:
        widget: An ipywidgets widget.
        **kwargs: Passed on to ``_repr_mimebundle_`` (ipywidgets 8).

    Returns:
        ``{"text/plain": ..., WIDGET_MIME: {"version_major", "version_minor", "model_id"}}``.
    """
    if hasattr(widget, "_repr_mimebundle_"):
        return widget._repr_mimebundle_(**kwargs)
    plaintext = repr(widget)
    bundle: dict = {"text/plain": plaintext if len(plaintext) <= 110 else plaintext[:110] + "…"}
    if widget._view_name is not None:
        bundle[WIDGET_MIME] = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    return bundle


def display_widget(widget: Any) -> None:
    """Display an ipywidgets widget in the current output (``IPython.display.display``).

    Args:
        widget: An ipywidgets widget; both versions know how to display themselves.
    """
    from IPython.display import display

    display(widget)


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """Read a ``FileUpload.value`` of either ipywidgets version as ``(name, bytes)`` pairs.

    Args:
        value: ipywidgets 8: a tuple of ``{"name", "content", ...}`` dicts; ipywidgets 7: a dict
            ``{name: {"metadata": {...}, "content": bytes}}``.

    Returns:
        One ``(file name, content)`` per uploaded file, in upload order; empty when none.

    Raises:
        ValueError: If ``value`` is neither shape.
    """
    if not value:
        return []
    if isinstance(value, Mapping):
        return [(str(name), bytes(item["content"])) for name, item in value.items()]
    if isinstance(value, Sequence) and all(isinstance(item, Mapping) for item in value):
        return [(str(item.get("name", "upload")), bytes(item["content"])) for item in value]
    raise ValueError(
        f"unrecognised FileUpload value of type {type(value).__name__}: expected the "
        "ipywidgets 8 tuple of dicts or the ipywidgets 7 {name: {'content': ...}} dict"
    )
