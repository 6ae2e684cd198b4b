"""Explanations of a prediction in words from a multimodal Gemini model, and the factory.

:class:`GeminiExplainer` sends the scan, the saliency overlay, the prediction and the
saliency method to a multimodal Gemini model through the ``google-genai`` SDK and asks
for a short structured (JSON schema) answer. It has the ``wording.TextExplainer``
interface, as ``wording.OfflineExplainer`` has; :func:`make_explainer` picks one.

It never raises for a service problem: a missing or invalid key, a refused or blocked
answer, a timeout or no network all give ``TextExplanation(ok=False, error=<message>)``
whose ``text`` shows the message, so an app keeps working. Every ``text`` ends with
``wording.NOTICE``. Importing this module does nothing: the SDK is imported and the
client is made on the first Gemini call.

The default model is Google's maintained alias :data:`DEFAULT_MODEL`, never a dated id
(dated models retire: ``gemini-1.5-flash`` answers 404, ``gemini-2.5-flash`` reaches end
of life on 2026-10-16). If the alias itself is not found, the explainer lists the models
the key can use and falls back to the best Flash model (:func:`rank_flash_models`), says
so in every explanation and keeps it for the session.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Iterable
from typing import Any, Literal

from course_utils import course, images, wording

#: Default Gemini model: Google's maintained alias of the current Flash model.
DEFAULT_MODEL = "gemini-flash-latest"
#: Page size asked of ``models.list`` (the service's largest is 1000; the SDK pages on).
MODEL_LIST_PAGE_SIZE = 100
# A plain Flash model id: ``gemini-<version>-flash[-lite]`` and only preview / experimental /
# ``latest`` / number tags (so no -tts, -image, -live, -audio variant, which cannot answer).
_FLASH_ID = re.compile(
    r"^gemini-(?P<major>\d+)(?:\.(?P<minor>\d+))?-flash(?P<lite>-lite)?"
    r"(?P<tags>(?:-(?:preview|exp|experimental|latest|\d+))*)$"
)
#: Environment variables searched for a key, in this order.
API_KEY_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
#: HTTP status codes retried with exponential backoff.
RETRY_STATUS_CODES = (408, 429, 500, 502, 503, 504)
NO_KEY_MESSAGE = (
    "No API key: set GEMINI_API_KEY (or GOOGLE_API_KEY, or the Colab secret GEMINI_API_KEY) "
    "or use the offline explainer."
)
# Finish / block reasons that mean the answer was withheld by a filter.
_BLOCK_REASONS = {
    "SAFETY",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "RECITATION",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
    "JAILBREAK",
    "OTHER",
}
#: JSON schema (OpenAPI subset, as the Gemini API takes it) of the structured answer.
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {
        "highlighted_region": {
            "type": "STRING",
            "description": "What the highlighted region of the overlay is, anatomically.",
        },
        "matches_typical_location": {
            "type": "BOOLEAN",
            "description": "Whether the highlighted region is where the predicted type occurs.",
        },
        "typical_location": {
            "type": "STRING",
            "description": "Where the predicted tumor type typically occurs.",
        },
        "caveats": {
            "type": "ARRAY",
            "items": {"type": "STRING"},
            "description": "Short caveats about confidence and about the saliency map.",
        },
    },
    "required": ["highlighted_region", "matches_typical_location", "typical_location", "caveats"],
}


class _AnswerError(Exception):
    """The service answered, but not with a usable explanation (message for the user)."""


def _colab_secret(name: str) -> str | None:
    """Return the Colab secret ``name``, or None when missing, not shared or not in Colab."""
    if "google.colab" not in sys.modules:
        return None
    from google.colab import userdata  # only exists inside Colab

    names = ("SecretNotFoundError", "NotebookAccessError", "TimeoutException")
    expected = tuple(getattr(userdata, n) for n in names if hasattr(userdata, n))
    try:
        value = userdata.get(name)
    except expected:
        return None
    return value or None


def find_api_key() -> str | None:
    """Find a Gemini API key without asking anyone.

    Looks at ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``, then (only inside Colab) the
    Colab secret ``GEMINI_API_KEY``; a missing secret or one the notebook may not read
    counts as no key.

    Returns:
        The key, or None when there is none.
    """
    for name in API_KEY_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return _colab_secret("GEMINI_API_KEY")


def build_prompt(
    predicted_class: str,
    probabilities: dict[str, float],
    method: str,
    statistics: dict[str, Any] | None = None,
) -> str:
    """The text part of the Gemini request (the two images are sent beside it).

    Args:
        predicted_class: The class the model predicts.
        probabilities: Probability of every class.
        method: The saliency method that made the overlay (e.g. ``"Grad-CAM"``).
        statistics: Optional saliency statistics (see ``wording.OfflineExplainer``).

    Returns:
        The prompt.
    """
    probs = ", ".join(f"{name}: {p:.3f}" for name, p in wording.ranked_probabilities(probabilities))
    typical = "; ".join(f"{name}: {where}" for name, where in wording.TYPICAL_LOCATIONS.items())
    lines = [
        "You help students of an educational course on brain-tumor MRI classification "
        "understand what an image classifier looked at. This is not clinical use.",
        "Image 1 is the original MRI slice. Image 2 is the same slice with a "
        f"{method} saliency map overlaid (warm colours = what the classifier relied on most).",
        f"The classifier predicts: {predicted_class}.",
        f"Class probabilities: {probs}.",
        f"Saliency method: {method}.",
    ]
    if statistics:
        stats = json.dumps(course.to_jsonable(statistics))
        lines.append(f"Saliency statistics (fractions of width/height): {stats}")
    lines += [
        f"Typical locations, for reference: {typical}.",
        "Answer in JSON following the schema, briefly (one or two sentences per field): "
        "what the highlighted region is; whether it matches where the predicted type "
        "typically occurs; that typical location; and caveats about confidence and about "
        "what a saliency map can show. Do not give a diagnosis.",
    ]
    return "\n".join(lines)


def render_answer(fields: dict[str, Any], predicted_class: str, method: str, note: str = "") -> str:
    """Readable Markdown text from Gemini's structured answer, ending with the notice.

    Args:
        fields: The parsed answer (keys of :data:`RESPONSE_SCHEMA`).
        predicted_class: The predicted class (named in the text).
        method: The saliency method (named in the text).
        note: A sentence shown in italics before the notice (e.g. which model answered).

    Returns:
        The text.
    """
    match = fields.get("matches_typical_location")
    verdict = "yes" if match is True else "no" if match is False else "unclear"
    lines = [
        f"**Highlighted region ({method}):** {fields.get('highlighted_region', '').strip()}",
        f"**Typical location of {predicted_class}:** {fields.get('typical_location', '').strip()}",
        f"**Matches the typical location:** {verdict}",
    ]
    caveats = [str(c).strip() for c in fields.get("caveats", []) if str(c).strip()]
    if caveats:
        lines.append("**Caveats:**")
        lines += [f"- {c}" for c in caveats]
    if note:
        lines.append(f"_{note}_")
    return wording.with_notice("\n".join(lines))


def _enum_name(value: Any) -> str:
    """The name of an SDK enum value or plain string (``FinishReason.SAFETY`` → ``"SAFETY"``)."""
    if value is None:
        return ""
    return str(getattr(value, "value", value)).upper()


def _check_blocked(response: Any) -> None:
    """Raise :class:`_AnswerError` if the prompt or the answer was blocked by a filter."""
    feedback = getattr(response, "prompt_feedback", None)
    reason = _enum_name(getattr(feedback, "block_reason", None))
    if reason and reason != "BLOCKED_REASON_UNSPECIFIED":
        raise _AnswerError(f"Gemini blocked the request ({reason}); no explanation was given.")
    for candidate in getattr(response, "candidates", None) or []:
        finish = _enum_name(getattr(candidate, "finish_reason", None))
        if finish in _BLOCK_REASONS:
            raise _AnswerError(f"Gemini blocked the answer ({finish}); no explanation was given.")


def parse_answer(response: Any) -> dict[str, Any]:
    """The structured answer inside a ``generate_content`` response.

    Args:
        response: A ``google.genai.types.GenerateContentResponse``.

    Returns:
        The answer as a dict with at least ``highlighted_region``.

    Raises:
        _AnswerError: If the answer was blocked, is empty, was cut off or is not the JSON
            object that was asked for.
    """
    _check_blocked(response)
    candidates = getattr(response, "candidates", None) or []
    text = (response.text or "").strip() if candidates else ""
    if not text:
        raise _AnswerError("Gemini returned an empty answer; try again or use the offline one.")
    finish = _enum_name(getattr(candidates[0], "finish_reason", None))
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as err:
        cut = " (the answer was cut off: MAX_TOKENS)" if finish == "MAX_TOKENS" else ""
        raise _AnswerError(f"Gemini's answer is not valid JSON{cut}: {err.msg}.") from err
    if not isinstance(fields, dict) or not str(fields.get("highlighted_region", "")).strip():
        raise _AnswerError("Gemini's answer is not valid JSON of the requested form.")
    if not isinstance(fields.get("caveats", []), list):
        fields["caveats"] = [str(fields["caveats"])]
    return fields


def _flash_rank(model_id: str) -> tuple[bool, int, int, bool, bool] | None:
    """Sort key of a plain Flash model id (bigger is better), None for any other id."""
    match = _FLASH_ID.match(model_id)
    if not match:
        return None
    tags = match["tags"].split("-")[1:]
    stable = not {"preview", "exp", "experimental"} & set(tags)
    return (not match["lite"], int(match["major"]), int(match["minor"] or 0), stable, not tags)


def rank_flash_models(models: Iterable[Any]) -> list[str]:
    """The Flash models that can answer ``generateContent``, best first.

    The rule: keep a model whose ``supported_actions`` include ``generateContent`` and
    whose id (``name`` without ``models/``) is ``gemini-<version>-flash[-lite]``, tagged
    only ``-preview``, ``-exp``, ``-latest`` or numbers (a date, ``-001``): -tts, -image,
    -live, -audio variants and unversioned aliases are left out. Rank: Flash before
    Flash-Lite; then the higher version (``3`` = 3.0 > 2.5); then stable before preview /
    experimental; then the plain id before a tagged one; then by id, descending.

    Args:
        models: ``google.genai.types.Model`` objects (``client.models.list()``), or
            anything with ``name`` and ``supported_actions``.

    Returns:
        Model ids, best first; empty when none qualifies.
    """
    ranked = []
    for model in models:
        model_id = str(getattr(model, "name", "") or "").removeprefix("models/")
        rank = _flash_rank(model_id)
        if rank and "generateContent" in (getattr(model, "supported_actions", None) or []):
            ranked.append((rank, model_id))
    return [model_id for _, model_id in sorted(ranked, reverse=True)]


def not_found_message(model_id: str, detail: str, available: list[str] | None) -> str:
    """The message for a model id the service does not have (404).

    Args:
        model_id: The model that was asked.
        detail: The service's message.
        available: Flash models the key can use, best first (None: the list is unknown).

    Returns:
        The message, naming the Flash models (or the default) to use instead.
    """
    message = f"Model '{model_id}' was not found ({detail or 'NOT_FOUND'}); it may be retired."
    if available:
        more = f" and {len(available) - 6} more" if len(available) > 6 else ""
        return (
            f"{message} Flash models this key can use, best first: {', '.join(available[:6])}"
            f"{more}. "
            f"Set the model id to one of them or to the default '{DEFAULT_MODEL}'."
        )
    hint = f"try the default '{DEFAULT_MODEL}'" if model_id != DEFAULT_MODEL else "check it"
    return f"{message} Set another model id: {hint}."


def describe_api_error(
    err: Exception, model_id: str, attempts: int = 1, available: list[str] | None = None
) -> str:
    """A user-facing message for an error answer of the Gemini API.

    Args:
        err: A ``google.genai.errors.APIError`` (``.code``, ``.status``, ``.message``).
        model_id: The model that was asked (named in a 404 message).
        attempts: How many attempts were made (named for retried errors).
        available: For a 404, the Flash models the key can use (named in the message).

    Returns:
        The message.
    """
    code = getattr(err, "code", None)
    status = getattr(err, "status", None) or ""
    detail = str(getattr(err, "message", None) or "").strip()
    details = json.dumps(getattr(err, "details", None) or "", default=str)
    tried = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts > 1 else ""
    key_words = ("API key", "API_KEY_INVALID", "API_KEY")
    if code in (401, 403) or (code == 400 and any(w in detail + details for w in key_words)):
        return f"The Gemini API key was refused ({code} {status}: {detail}). Check GEMINI_API_KEY."
    if code == 404:
        return not_found_message(model_id, detail, available)
    if code == 429:
        return f"Gemini rate limit or quota exceeded (429){tried}: wait a minute and try again."
    if isinstance(code, int) and code >= 500:
        return f"The Gemini service failed ({code} {status}){tried}: try again later."
    return f"Gemini rejected the request ({code} {status}): {detail}"


def _transport_errors(name: str) -> tuple[type[BaseException], ...]:
    """Transport exception classes ``name`` of the HTTP libraries the SDK may use.

    google-genai 3.x sends requests with ``httpx2`` (a fork of ``httpx`` with its own
    exception classes) when it is installed, else with ``httpx``; either may be missing.

    Args:
        name: ``"TransportError"`` (every network failure) or ``"TimeoutException"``.

    Returns:
        The classes found, plus the built-in ``TimeoutError`` (and ``ConnectionError``).
    """
    found: list[type[BaseException]] = [TimeoutError]
    if name == "TransportError":
        found.append(ConnectionError)
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.append(getattr(module, name))
    return tuple(found)


class GeminiExplainer:
    """Explanations from a multimodal Gemini model (``google-genai`` SDK).

    Retries (429, 408 and 5xx answers, connection errors and timeouts) are the SDK's own
    ``HttpRetryOptions``: exponential backoff from ``retry_initial_delay_s``, doubling,
    with jitter, at most ``max_retries`` retries. ``timeout_s`` is per attempt, so the
    worst case is about ``(max_retries + 1) * timeout_s`` plus the backoff.

    Model fallback: only the default alias :data:`DEFAULT_MODEL` falls back. When it
    answers 404, the explainer lists the models (``client.models.list()``), uses the
    first of :func:`rank_flash_models` from then on (:attr:`active_model`, listed once
    per explainer) and says so in every explanation (:attr:`fallback_note`); with no
    Flash model the explanation fails with a clear message. Any other id is pinned: a
    404 fails with a message naming the Flash models the key can use.

    Args:
        model_id: Gemini model id; pinned unless it is the default alias.
        api_key: The key; None looks it up with :func:`find_api_key` at each call.
        base_url: Service address; None uses the SDK default, which honours the
            ``GOOGLE_GEMINI_BASE_URL`` environment variable (tests point it at a local server).
        timeout_s: Timeout of one HTTP attempt, in seconds.
        max_retries: Retries after the first attempt.
        retry_initial_delay_s: First backoff delay, in seconds.
        api_version: REST API version (``v1beta`` has structured output on every SDK version).
        temperature: Sampling temperature.
    """

    source: Literal["gemini"] = "gemini"

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        retry_initial_delay_s: float = 1.0,
        api_version: str = "v1beta",
        temperature: float = 0.2,
    ) -> None:
        self.model_id = model_id
        self.api_key = api_key
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.max_retries = max(0, int(max_retries))
        self.retry_initial_delay_s = retry_initial_delay_s
        self.api_version = api_version
        self.temperature = temperature
        self._clients: dict[str, Any] = {}
        self._fallback_model: str | None = None

    @property
    def active_model(self) -> str:
        """The model asked: the session's fallback, if the default alias was not found."""
        return self._fallback_model or self.model_id

    @property
    def fallback_note(self) -> str:
        """The sentence every explanation carries after a fallback (``""`` without one)."""
        if not self._fallback_model:
            return ""
        return (
            f"Model '{self.model_id}' was not found; used '{self._fallback_model}' "
            "(the best Flash model this key can use) for this session."
        )

    def _client(self, api_key: str) -> Any:
        """The SDK client for ``api_key`` (made on first use, then reused)."""
        if api_key not in self._clients:
            from google import genai  # heavy import: only when used
            from google.genai import types

            retry = types.HttpRetryOptions(
                attempts=self.max_retries + 1,
                initial_delay=self.retry_initial_delay_s,
                max_delay=max(self.retry_initial_delay_s, 30.0),
                exp_base=2.0,
                jitter=self.retry_initial_delay_s / 2,
                http_status_codes=list(RETRY_STATUS_CODES),
            )
            options = types.HttpOptions(
                base_url=self.base_url,
                api_version=self.api_version,
                timeout=max(1, round(self.timeout_s * 1000)),
                retry_options=retry,
            )
            self._clients[api_key] = genai.Client(
                api_key=api_key, vertexai=False, http_options=options
            )
        return self._clients[api_key]

    def _generate(self, api_key: str, model_id: str, *request: Any) -> Any:
        """Send ``generateContent`` (scan PNG, overlay PNG, prompt; SDK retries); return it."""
        from google.genai import types

        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=RESPONSE_SCHEMA,
            temperature=self.temperature,
        )
        scan_png, overlay_png, prompt = request
        contents = [
            types.Part.from_bytes(data=scan_png, mime_type="image/png"),
            types.Part.from_bytes(data=overlay_png, mime_type="image/png"),
            prompt,
        ]
        return self._client(api_key).models.generate_content(
            model=model_id, contents=contents, config=config
        )

    def _flash_models(self, api_key: str) -> list[str]:
        """The Flash models the key can use, best first (every page of ``models.list``)."""
        pager = self._client(api_key).models.list(config={"page_size": MODEL_LIST_PAGE_SIZE})
        return rank_flash_models(pager)

    def _ask(self, api_key: str, *request: Any) -> Any:
        """``generateContent`` with :attr:`active_model`, falling back once from the alias.

        Raises:
            _AnswerError: If the model was not found and there is nothing to fall back to.
        """
        from google.genai import errors

        model_id = self.active_model
        try:
            return self._generate(api_key, model_id, *request)
        except errors.APIError as err:
            if err.code != 404:
                raise
            not_found = err
        try:
            available = self._flash_models(api_key)
        except (errors.APIError, *_transport_errors("TransportError")) as err:
            if model_id != DEFAULT_MODEL:  # a pinned id: the plain 404 message
                raise _AnswerError(self._error_message(not_found, model_id)) from err
            raise _AnswerError(
                f"Model '{model_id}' was not found, and the list of available models could "
                f"not be read: {self._error_message(err, model_id)}"
            ) from err
        if model_id != DEFAULT_MODEL:  # a pinned id: no fallback, name the choices
            raise _AnswerError(self._error_message(not_found, model_id, available))
        if not available:
            raise _AnswerError(
                f"Model '{model_id}' was not found, and this API key has no Flash model that "
                "supports generateContent. Set another model id (GEMINI_MODEL or "
                "--gemini-model) or use the offline explainer."
            )
        self._fallback_model = available[0]
        return self._generate(api_key, self._fallback_model, *request)

    def _error_message(
        self, err: Exception, model_id: str | None = None, available: list[str] | None = None
    ) -> str:
        """A user-facing message for an exception raised while asking ``model_id``."""
        from google.genai import errors

        attempts = self.max_retries + 1
        if isinstance(err, _AnswerError):
            return str(err)
        if isinstance(err, errors.APIError):
            return describe_api_error(err, model_id or self.active_model, attempts, available)
        if isinstance(err, _transport_errors("TimeoutException")):
            return (
                f"Gemini did not answer within {self.timeout_s:g} s ({attempts} attempts): "
                "the network or the service is slow; try again or use the offline explainer."
            )
        return (
            f"No network: could not reach the Gemini service ({type(err).__name__}: {err}). "
            "Check the connection or use the offline explainer."
        )

    def explain(
        self,
        scan_png: bytes,
        overlay_png: bytes,
        predicted_class: str,
        probabilities: dict[str, float],
        method: str,
        statistics: dict[str, Any] | None = None,
    ) -> wording.TextExplanation:
        """Ask Gemini to explain one prediction.

        Args:
            scan_png: The original scan as PNG bytes (or an array / PIL image).
            overlay_png: The saliency overlay as PNG bytes (or an array / PIL image).
            predicted_class: The predicted class.
            probabilities: Probability of every class.
            method: The saliency method that made the overlay.
            statistics: Optional saliency statistics, passed on in the prompt.

        Returns:
            The explanation; on any failure ``ok=False`` with a clear ``error`` (never raises
            for a key, service or network problem).
        """
        from google.genai import errors

        api_key = self.api_key or find_api_key()
        if not api_key:
            return wording.failed_explanation(NO_KEY_MESSAGE)
        try:
            pngs = images.to_png_bytes(scan_png), images.to_png_bytes(overlay_png)
            prompt = build_prompt(predicted_class, probabilities, method, statistics)
            fields = parse_answer(self._ask(api_key, *pngs, prompt))
        except (errors.APIError, _AnswerError, *_transport_errors("TransportError")) as err:
            return wording.failed_explanation(self._error_message(err))
        except ValueError as err:  # a bad image, or a request the SDK refuses to build
            return wording.failed_explanation(f"Could not ask Gemini: {err}")
        text = render_answer(fields, predicted_class, method, self.fallback_note)
        return wording.TextExplanation(text=text, source="gemini", ok=True, fields=fields)


def make_explainer(
    kind: Literal["offline", "gemini", "auto"] = "auto",
    model_id: str = DEFAULT_MODEL,
    api_key: str | None = None,
    **gemini_options: Any,
) -> GeminiExplainer | wording.OfflineExplainer:
    """Make an explainer.

    Args:
        kind: ``"offline"``, ``"gemini"``, or ``"auto"`` (Gemini when a key is found by
            ``api_key`` or :func:`find_api_key`, otherwise offline).
        model_id: Gemini model id.
        api_key: Gemini API key; None finds one.
        **gemini_options: More :class:`GeminiExplainer` arguments (``base_url``,
            ``timeout_s``, ``max_retries`` …).

    Returns:
        The explainer.

    Raises:
        ValueError: If ``kind`` is not one of the three.
    """
    if kind not in ("offline", "gemini", "auto"):
        raise ValueError(f"kind must be 'offline', 'gemini' or 'auto', not {kind!r}")
    if kind == "offline" or (kind == "auto" and not (api_key or find_api_key())):
        return wording.OfflineExplainer()
    return GeminiExplainer(model_id=model_id, api_key=api_key, **gemini_options)
