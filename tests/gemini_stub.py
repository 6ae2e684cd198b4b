"""A local stand-in for the Gemini REST API, for tests (127.0.0.1 only, no internet).

``GeminiStub`` answers ``POST /<version>/models/<model>:generateContent`` with scripted
replies and ``GET /<version>/models`` (``client.models.list()``) with a model catalogue in
pages, as the real service does (``pageSize``, ``pageToken`` → ``nextPageToken``). It
records every request, so a test can drive the real ``google-genai`` client::

    with GeminiStub([reply(429, error_body(429, "slow down")), reply(200, answer_body(...))]) as s:
        client = genai.Client(api_key="k", http_options=HttpOptions(base_url=s.url))
        ...
    assert len(s.requests) == 2

The last scripted reply repeats when the script runs out. A reply may ``delay`` its answer
(to test timeouts); the delay is cut short when the stub stops, so shutdown stays fast.

With ``models=None`` the list is :data:`DEFAULT_CATALOGUE` and every model id is answered
from the script. With ``models=[...]`` (ids or :func:`model_entry` dicts) the service has
exactly those models: ``generateContent`` on any other id, or on one without
``generateContent`` in its methods, answers the real 404 without using the script.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH_RE = re.compile(r"^/(?P<version>v1[a-z0-9]*)/models/(?P<model>[^/:]+):generateContent$")
LIST_RE = re.compile(r"^/(?P<version>v1[a-z0-9]*)/models/?$")
#: Methods of a chat model, as ``supportedGenerationMethods`` lists them.
CHAT_METHODS = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
#: The real API's page size when ``pageSize`` is not given, and its largest page.
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


def model_entry(model_id: str, methods: tuple[str, ...] = CHAT_METHODS) -> dict[str, Any]:
    """One ``Model`` of a ``models.list`` answer, in the REST form the real service sends."""
    return {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": model_id.replace("-", " ").title(),
        "description": f"Stub of {model_id}",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": list(methods),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }


#: What ``models.list`` answers when a test gives no catalogue (a plausible 2026 key).
DEFAULT_CATALOGUE = [
    model_entry("gemini-flash-latest"),
    model_entry("gemini-flash-lite-latest"),
    model_entry("gemini-2.5-flash"),
    model_entry("gemini-2.5-flash-lite"),
    model_entry("gemini-2.5-pro"),
    model_entry("gemini-3-flash-preview"),
    model_entry("gemini-2.5-flash-preview-tts", ("countTokens", "generateContent")),
    model_entry("gemini-embedding-001", ("embedContent", "countTokens")),
]


@dataclass
class Reply:
    """One scripted reply: HTTP status, JSON body (or raw text) and a delay before it."""

    status: int = 200
    body: Any = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Recorded:
    """One request the stub received (for a ``models.list`` page, ``body`` is its query)."""

    path: str
    version: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]

    def inline_images(self) -> list[dict[str, str]]:
        """The ``inlineData`` parts (``{"mime_type"|"mimeType": ..., "data": base64}``)."""
        parts = [p for c in self.body.get("contents", []) for p in c.get("parts", [])]
        return [p.get("inlineData") or p.get("inline_data") for p in parts if _is_inline(p)]

    def image_bytes(self) -> list[bytes]:
        """The decoded ``inlineData`` bytes (the SDK sends URL-safe base64; both are valid)."""
        return [base64.urlsafe_b64decode(i["data"]) for i in self.inline_images()]

    def texts(self) -> list[str]:
        """The ``text`` parts."""
        parts = [p for c in self.body.get("contents", []) for p in c.get("parts", [])]
        return [p["text"] for p in parts if "text" in p]


def _is_inline(part: dict[str, Any]) -> bool:
    return "inlineData" in part or "inline_data" in part


def reply(status: int = 200, body: Any = None, delay_s: float = 0.0) -> Reply:
    """Shorthand for :class:`Reply`."""
    return Reply(status, {} if body is None else body, delay_s)


def answer_body(text: str | None, finish_reason: str = "STOP", **extra: Any) -> dict[str, Any]:
    """A ``generateContent`` response whose first candidate says ``text`` (None: no content)."""
    candidate: dict[str, Any] = {"finishReason": finish_reason, "index": 0}
    if text is not None:
        candidate["content"] = {"role": "model", "parts": [{"text": text}]}
    return {"candidates": [candidate], "modelVersion": "stub", **extra}


def not_found_body(model_id: str, version: str = "v1beta") -> dict[str, Any]:
    """The real 404 body for a model id the service does not have."""
    message = (
        f"models/{model_id} is not found for API version {version}, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods."
    )
    return error_body(404, message, "NOT_FOUND")


def error_body(code: int, message: str, status: str = "", reason: str = "") -> dict[str, Any]:
    """A Google API error body, as the real service sends it."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status or "UNKNOWN"}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return {"error": error}


class GeminiStub:
    """A threaded HTTP server on 127.0.0.1 (OS-chosen port) answering from a script.

    Args:
        script: Replies to ``generateContent``, in order (the last one repeats).
        models: The catalogue (model ids or :func:`model_entry` dicts); None lists
            :data:`DEFAULT_CATALOGUE` and answers every model id from the script.
        max_page_size: Largest page of ``models.list`` (the real service: 1000).
        list_reply: A reply that replaces every ``models.list`` answer (e.g. an error).

    Attributes:
        requests: Every ``generateContent`` request, in order.
        list_requests: Every ``models.list`` page request (``body`` holds the query).
    """

    def __init__(
        self,
        script: list[Reply] | None = None,
        models: list[str | dict[str, Any]] | None = None,
        max_page_size: int = MAX_PAGE_SIZE,
        list_reply: Reply | None = None,
    ) -> None:
        self.script = list(script or [reply(200, answer_body("{}"))])
        self.strict = models is not None
        catalogue = DEFAULT_CATALOGUE if models is None else models
        self.models = [model_entry(m) if isinstance(m, str) else m for m in catalogue]
        self.max_page_size = max_page_size
        self.list_reply = list_reply
        self.requests: list[Recorded] = []
        self.list_requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL to give the client (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GeminiStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> GeminiStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serves(self, model_id: str) -> bool:
        """Whether the catalogue has ``model_id`` with ``generateContent``."""
        return any(
            m["name"] == f"models/{model_id}"
            and "generateContent" in m.get("supportedGenerationMethods", [])
            for m in self.models
        )

    def _next_reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if self.strict and not self._serves(recorded.model):
                return reply(404, not_found_body(recorded.model, recorded.version))
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _list_reply(self, recorded: Recorded) -> Reply:
        """One page of the catalogue, with ``nextPageToken`` when more follow."""
        with self._lock:
            self.list_requests.append(recorded)
        if self.list_reply is not None:
            return self.list_reply
        query = recorded.body
        size = int(query.get("pageSize", DEFAULT_PAGE_SIZE))
        size = min(size if size > 0 else DEFAULT_PAGE_SIZE, self.max_page_size)
        token = query.get("pageToken", "")
        if token and not token.startswith("page-"):
            return reply(400, error_body(400, "Invalid page token.", "INVALID_ARGUMENT"))
        start = int(token.removeprefix("page-") or 0)
        page: dict[str, Any] = {"models": self.models[start : start + size]}
        if start + size < len(self.models):
            page["nextPageToken"] = f"page-{start + size}"
        return reply(200, page)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path, _, query = self.path.partition("?")
                match = LIST_RE.match(path)
                if not match:
                    self._send(reply(404, error_body(404, f"no route {self.path}", "NOT_FOUND")))
                    return
                params = dict(urllib.parse.parse_qsl(query))
                headers = {k.lower(): v for k, v in self.headers.items()}
                recorded = Recorded(self.path, match["version"], "", headers, params)
                self._send(stub._list_reply(recorded))

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length) if length else b""
                match = PATH_RE.match(self.path.split("?", 1)[0])
                if not match:
                    self._send(reply(404, error_body(404, f"no route {self.path}", "NOT_FOUND")))
                    return
                body = json.loads(raw or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                recorded = Recorded(self.path, match["version"], match["model"], headers, body)
                answer = stub._next_reply(recorded)
                if answer.delay_s and stub._stop.wait(answer.delay_s):
                    return  # stopping: drop the connection without answering
                self._send(answer)

            def _send(self, answer: Reply) -> None:
                body = answer.body
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler
