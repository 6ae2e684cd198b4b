"""course_utils.llm: the real google-genai client against a local stub server, and the factory."""

from __future__ import annotations

import base64
import io
import json
import socket
import sys
import time
import types

import numpy as np
import pytest
from gemini_stub import GeminiStub, answer_body, error_body, model_entry, reply
from PIL import Image

from course_utils import llm, wording

PROBS = {"meningioma": 0.87, "glioma": 0.09, "pituitary": 0.03, "notumor": 0.01}
GOOD = {
    "highlighted_region": "A bright extra-axial mass against the right frontal convexity.",
    "matches_typical_location": True,
    "typical_location": "Extra-axial, attached to the dura.",
    "caveats": ["Saliency is not segmentation.", "Single slice only."],
}


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


SCAN, OVERLAY = _png(40), _png(200)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real key, base URL, Vertex switch or proxy leaks into a test."""
    for name in (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_API_VERSION",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


@pytest.fixture
def stub(request: pytest.FixtureRequest):
    """A started GeminiStub with the script given by ``@pytest.mark.parametrize(indirect)``."""
    server = GeminiStub(getattr(request, "param", None)).start()
    yield server
    server.stop()


def _explainer(url: str, **kwargs) -> llm.GeminiExplainer:
    options = {"timeout_s": 2.0, "max_retries": 2, "retry_initial_delay_s": 0.05} | kwargs
    return llm.GeminiExplainer(api_key="test-key-123", base_url=url, **options)


def _explain(explainer: llm.GeminiExplainer, **kwargs) -> wording.TextExplanation:
    return explainer.explain(SCAN, OVERLAY, "meningioma", PROBS, "Grad-CAM", **kwargs)


def _assert_failure(result: wording.TextExplanation, *words: str) -> None:
    assert not result.ok and result.source == "gemini"
    assert result.text.endswith(wording.NOTICE) and result.error in result.text
    assert "Traceback" not in result.text
    for word in words:
        assert word.lower() in result.error.lower(), (word, result.error)


# --------------------------------------------------------------------------- request, success


@pytest.mark.parametrize("stub", [[reply(200, answer_body(json.dumps(GOOD)))]], indirect=True)
def test_request_carries_both_images_prompt_and_key(stub: GeminiStub) -> None:
    stats = {"side": "right", "near_skull": True}
    result = _explain(_explainer(stub.url), statistics=stats)
    assert result.ok, result.error
    assert len(stub.requests) == 1
    sent = stub.requests[0]
    assert sent.model == llm.DEFAULT_MODEL and sent.version == "v1beta"
    assert sent.headers["x-goog-api-key"] == "test-key-123"
    images = sent.inline_images()
    assert [i.get("mimeType") or i.get("mime_type") for i in images] == ["image/png"] * 2
    assert [i["data"] for i in images] == [
        base64.urlsafe_b64encode(b).decode() for b in (SCAN, OVERLAY)
    ]
    assert sent.image_bytes() == [SCAN, OVERLAY]
    prompt = "\n".join(sent.texts())
    for word in ("meningioma", "0.870", "glioma", "0.090", "pituitary", "notumor", "Grad-CAM"):
        assert word in prompt
    assert '"near_skull": true' in prompt
    config = sent.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseSchema"]["required"]) >= {"highlighted_region", "caveats"}


@pytest.mark.parametrize("stub", [[reply(200, answer_body(json.dumps(GOOD)))]], indirect=True)
def test_good_answer_renders_readable_text(stub: GeminiStub) -> None:
    result = _explain(_explainer(stub.url))
    assert result.ok and result.source == "gemini" and result.error == ""
    assert result.fields == GOOD
    for piece in (GOOD["highlighted_region"], GOOD["typical_location"], *GOOD["caveats"]):
        assert piece in result.text
    assert "Matches the typical location:** yes" in result.text
    assert "Grad-CAM" in result.text and "{" not in result.text
    assert result.text.endswith(wording.NOTICE)


@pytest.mark.parametrize("stub", [[reply(200, answer_body(json.dumps(GOOD)))]], indirect=True)
def test_base_url_from_sdk_environment_variable(
    stub: GeminiStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", stub.url)
    monkeypatch.setenv("GEMINI_API_KEY", "env-key")
    explainer = llm.GeminiExplainer(timeout_s=2.0, max_retries=0)
    assert _explain(explainer).ok
    assert stub.requests[0].headers["x-goog-api-key"] == "env-key"


def test_arrays_are_encoded_as_png(stub: GeminiStub) -> None:
    array = np.linspace(0, 1, 48, dtype=np.float32).reshape(4, 4, 3)
    explainer = _explainer(stub.url)
    explainer.explain(array, Image.new("L", (4, 4)), "glioma", PROBS, "SmoothGrad")
    scan, overlay = stub.requests[0].image_bytes()
    assert np.allclose(np.asarray(Image.open(io.BytesIO(scan))) / 255, array, atol=1 / 255)
    assert Image.open(io.BytesIO(overlay)).size == (4, 4)


# --------------------------------------------------------------------------- retries, errors


@pytest.mark.parametrize(
    "stub",
    [[reply(429, error_body(429, "Resource exhausted", "RESOURCE_EXHAUSTED")),
      reply(200, answer_body(json.dumps(GOOD)))]],
    indirect=True,
)  # fmt: skip
def test_429_then_200_succeeds_after_a_retry(stub: GeminiStub) -> None:
    result = _explain(_explainer(stub.url))
    assert result.ok, result.error
    assert len(stub.requests) == 2


@pytest.mark.parametrize(
    "stub", [[reply(500, error_body(500, "Internal error", "INTERNAL"))]], indirect=True
)
def test_persistent_500_gives_clear_message_after_max_retries(stub: GeminiStub) -> None:
    result = _explain(_explainer(stub.url, max_retries=2))
    _assert_failure(result, "500", "3 attempts", "try again")
    assert len(stub.requests) == 3


@pytest.mark.parametrize(
    "stub", [[reply(429, error_body(429, "Quota exceeded", "RESOURCE_EXHAUSTED"))]], indirect=True
)
def test_persistent_429_says_rate_limit(stub: GeminiStub) -> None:
    _assert_failure(_explain(_explainer(stub.url, max_retries=1)), "rate limit", "429")
    assert len(stub.requests) == 2


@pytest.mark.parametrize(
    "stub",
    [[reply(404, error_body(404, "models/gemini-1.5-flash is not found for API version v1beta",
                            "NOT_FOUND"))]],
    indirect=True,
)  # fmt: skip
def test_404_names_the_model_and_suggests_the_default(stub: GeminiStub) -> None:
    result = _explain(_explainer(stub.url, model_id="gemini-1.5-flash"))
    _assert_failure(result, "gemini-1.5-flash", "not found", llm.DEFAULT_MODEL)
    assert len(stub.requests) == 1 and stub.requests[0].model == "gemini-1.5-flash"


@pytest.mark.parametrize(
    "stub",
    [[reply(400, error_body(400, "API key not valid. Please pass a valid API key.",
                            "INVALID_ARGUMENT", reason="API_KEY_INVALID"))]],
    indirect=True,
)  # fmt: skip
def test_invalid_key_gives_key_message(stub: GeminiStub) -> None:
    _assert_failure(_explain(_explainer(stub.url)), "API key was refused", "GEMINI_API_KEY")
    assert len(stub.requests) == 1  # 400 is not retried


@pytest.mark.parametrize(
    "stub",
    [[reply(400, error_body(400, "Request contains an invalid argument.", "INVALID_ARGUMENT"))]],
    indirect=True,
)
def test_other_400_is_reported_with_the_service_message(stub: GeminiStub) -> None:
    _assert_failure(_explain(_explainer(stub.url)), "rejected", "invalid argument")


@pytest.mark.parametrize(
    "stub",
    [
        [reply(200, answer_body('{"highlighted_region": "mass", "caveats": ['))],
        [reply(200, answer_body("Sure! Here is the explanation you asked for."))],
        [reply(200, answer_body('["not", "an", "object"]'))],
    ],
    indirect=True,
)
def test_malformed_json_answer(stub: GeminiStub) -> None:
    _assert_failure(_explain(_explainer(stub.url)), "not valid JSON")


@pytest.mark.parametrize(
    "stub", [[reply(200, answer_body('{"highlighted_region": "ma', "MAX_TOKENS"))]], indirect=True
)
def test_cut_off_answer_says_so(stub: GeminiStub) -> None:
    _assert_failure(_explain(_explainer(stub.url)), "not valid JSON", "MAX_TOKENS")


@pytest.mark.parametrize(
    "stub",
    [
        [reply(200, answer_body(None, "SAFETY", usageMetadata={"promptTokenCount": 5}))],
        [reply(200, {"promptFeedback": {"blockReason": "SAFETY"}})],
        [reply(200, {"candidates": [], "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})],
    ],
    indirect=True,
)
def test_safety_blocked_answer(stub: GeminiStub) -> None:
    _assert_failure(_explain(_explainer(stub.url)), "blocked")


@pytest.mark.parametrize(
    "stub",
    [
        [reply(200, {"candidates": []})],
        [reply(200, {})],
        [reply(200, answer_body(None, "STOP"))],
        [reply(200, answer_body("   "))],
    ],
    indirect=True,
)
def test_empty_answer(stub: GeminiStub) -> None:
    _assert_failure(_explain(_explainer(stub.url)), "empty answer")


@pytest.mark.parametrize(
    "stub", [[reply(200, answer_body(json.dumps(GOOD)), delay_s=10.0)]], indirect=True
)
def test_server_that_never_answers_times_out_quickly(stub: GeminiStub) -> None:
    start = time.monotonic()
    result = _explain(_explainer(stub.url, timeout_s=1.0, max_retries=0))
    assert time.monotonic() - start < 4.0
    _assert_failure(result, "did not answer within 1 s")


def test_connection_refused_says_no_network() -> None:
    with socket.socket() as sock:  # find a free port, then close it: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    result = _explain(_explainer(f"http://127.0.0.1:{port}", max_retries=1))
    assert time.monotonic() - start < 4.0
    _assert_failure(result, "no network", "offline explainer")


def test_missing_key_gives_clear_message_without_request(stub: GeminiStub) -> None:
    result = _explain(llm.GeminiExplainer(base_url=stub.url))
    _assert_failure(result, "no api key", "GEMINI_API_KEY", "offline explainer")
    assert result.error == llm.NO_KEY_MESSAGE
    assert stub.requests == []


def test_bad_image_gives_message_without_request(stub: GeminiStub) -> None:
    result = _explainer(stub.url).explain(b"GIF89a...", OVERLAY, "glioma", PROBS, "Grad-CAM")
    _assert_failure(result, "PNG")
    assert stub.requests == []


def test_client_is_made_lazily_and_reused(stub: GeminiStub) -> None:
    explainer = _explainer(stub.url)
    assert explainer._clients == {}
    _explain(explainer)
    _explain(explainer)
    assert len(explainer._clients) == 1 and len(stub.requests) == 2


# --------------------------------------------------------------------------- model fallback

ANSWER = reply(200, answer_body(json.dumps(GOOD)))
#: A key's catalogue without the alias: the best Flash model is ``gemini-3-flash``.
NO_ALIAS = [
    "gemini-2.0-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-flash",
    "gemini-3-flash-preview",
    "gemini-3-pro",
    "gemini-3.1-flash-lite",
    model_entry("gemini-3.5-flash-preview-tts", ("countTokens", "generateContent")),
    model_entry("gemini-4-flash", ("countTokens",)),
    "gemini-3-flash",
    "gemini-3-flash-image",
    model_entry("gemini-embedding-001", ("embedContent",)),
]


def test_default_model_is_the_maintained_alias() -> None:
    assert llm.DEFAULT_MODEL == "gemini-flash-latest"
    assert (
        llm.GeminiExplainer().model_id
        == llm.make_explainer("gemini").model_id
        == "gemini-flash-latest"
    )


def test_rank_flash_models_rule() -> None:
    def model(name: str, actions=("generateContent", "countTokens")) -> types.SimpleNamespace:
        return types.SimpleNamespace(name=f"models/{name}", supported_actions=list(actions))

    names = [
        "gemini-2.5-flash-lite", "gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash",
        "gemini-2.0-flash-001", "gemini-2.0-flash", "gemini-3-flash-preview",
        "gemini-flash-latest", "gemini-2.5-pro", "gemini-2.0-flash-live-001",
        "gemini-2.5-flash-image", "gemini-2.5-flash-native-audio-preview", "gemma-3-27b-it",
    ]  # fmt: skip
    ranked = llm.rank_flash_models([model(n) for n in names] + [model("gemini-9-flash", ())])
    assert ranked == [
        "gemini-3-flash-preview",  # newest version wins over a stable older one
        "gemini-2.5-flash",  # stable before preview of the same version
        "gemini-2.5-flash-preview-09-2025",
        "gemini-2.0-flash",  # the plain id before a pinned -001
        "gemini-2.0-flash-001",
        "gemini-2.5-flash-lite",  # Flash-Lite only after every Flash
    ]
    stable = llm.rank_flash_models([model("gemini-3-flash-preview"), model("gemini-3-flash")])
    assert stable == ["gemini-3-flash", "gemini-3-flash-preview"]
    assert (
        llm.rank_flash_models([types.SimpleNamespace(name="models/x", supported_actions=None)])
        == []
    )


def test_alias_is_used_when_it_exists() -> None:
    with GeminiStub([ANSWER], models=["gemini-2.5-flash", llm.DEFAULT_MODEL]) as stub:
        explainer = _explainer(stub.url)
        results = [_explain(explainer), _explain(explainer)]
    assert all(r.ok for r in results), results[0].error
    assert [r.model for r in stub.requests] == [llm.DEFAULT_MODEL] * 2
    assert stub.list_requests == [] and explainer.active_model == llm.DEFAULT_MODEL
    assert explainer.fallback_note == "" and "not found" not in results[0].text


def test_alias_404_falls_back_to_the_best_flash_model_once() -> None:
    with GeminiStub([ANSWER], models=NO_ALIAS, max_page_size=4) as stub:
        explainer = _explainer(stub.url)
        first = _explain(explainer)
        pages = len(stub.list_requests)
        second = _explain(explainer)
    assert first.ok and second.ok, first.error
    assert first.fields == GOOD
    assert [r.model for r in stub.requests] == [
        llm.DEFAULT_MODEL,
        "gemini-3-flash",
        "gemini-3-flash",
    ]
    assert pages == 3 and len(stub.list_requests) == 3  # every page once, then remembered
    assert "pageToken=page-4" in stub.list_requests[1].path
    assert stub.list_requests[0].headers["x-goog-api-key"] == "test-key-123"
    assert explainer.active_model == "gemini-3-flash" and explainer.model_id == llm.DEFAULT_MODEL
    note = "Model 'gemini-flash-latest' was not found; used 'gemini-3-flash'"
    for result in (first, second):
        assert note in result.text and result.text.endswith(wording.NOTICE)
        assert GOOD["highlighted_region"] in result.text


def test_no_flash_model_gives_a_clear_failure() -> None:
    catalogue = ["gemini-2.5-pro", model_entry("gemini-4-flash", ("countTokens",))]
    with GeminiStub([ANSWER], models=catalogue) as stub:
        explainer = _explainer(stub.url)
        result = _explain(explainer)
    _assert_failure(
        result, "gemini-flash-latest", "not found", "no flash model", "offline explainer"
    )
    assert [r.model for r in stub.requests] == [llm.DEFAULT_MODEL]
    assert explainer.active_model == llm.DEFAULT_MODEL


def test_model_list_failure_after_alias_404_is_explained() -> None:
    failure = reply(500, error_body(500, "Internal error", "INTERNAL"))
    with GeminiStub([ANSWER], models=["gemini-2.5-flash"], list_reply=failure) as stub:
        result = _explain(_explainer(stub.url, max_retries=0))
    _assert_failure(result, "gemini-flash-latest", "not found", "could not be read", "500")
    assert len(stub.list_requests) == 1 and len(stub.requests) == 1


def test_pinned_model_404_names_the_available_flash_models() -> None:
    with GeminiStub([ANSWER], models=NO_ALIAS) as stub:
        explainer = _explainer(stub.url, model_id="gemini-2.5-flash-lite-001")
        result = _explain(explainer)
    _assert_failure(result, "'gemini-2.5-flash-lite-001' was not found", llm.DEFAULT_MODEL)
    assert "best first: gemini-3-flash, gemini-3-flash-preview, gemini-2.5-flash," in result.error
    assert "tts" not in result.error and "gemini-3-pro" not in result.error
    many = [f"gemini-{version}-flash" for version in range(9, 0, -1)]
    message = llm.not_found_message("gemini-1.0-flash", "", many)
    assert "gemini-4-flash and 3 more." in message and "gemini-3-flash" not in message
    assert [r.model for r in stub.requests] == ["gemini-2.5-flash-lite-001"]  # no fallback
    assert len(stub.list_requests) == 1 and explainer.active_model == "gemini-2.5-flash-lite-001"


# --------------------------------------------------------------------------- keys, factory


def test_find_api_key_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert llm.find_api_key() is None
    monkeypatch.setenv("GOOGLE_API_KEY", "google")
    assert llm.find_api_key() == "google"
    monkeypatch.setenv("GEMINI_API_KEY", "gemini")
    assert llm.find_api_key() == "gemini"
    monkeypatch.setenv("GEMINI_API_KEY", "  ")
    assert llm.find_api_key() == "google"


def _fake_colab(monkeypatch: pytest.MonkeyPatch, behaviour) -> None:
    userdata = types.ModuleType("google.colab.userdata")

    class SecretNotFoundError(Exception):
        pass

    class NotebookAccessError(Exception):
        pass

    userdata.SecretNotFoundError = SecretNotFoundError
    userdata.NotebookAccessError = NotebookAccessError
    userdata.get = lambda name: behaviour(userdata, name)
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)


def test_find_api_key_colab_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_colab(monkeypatch, lambda ud, name: f"colab-{name}")
    assert llm.find_api_key() == "colab-GEMINI_API_KEY"
    monkeypatch.setenv("GOOGLE_API_KEY", "env")
    assert llm.find_api_key() == "env"  # the environment wins


@pytest.mark.parametrize("error", ["SecretNotFoundError", "NotebookAccessError"])
def test_find_api_key_colab_missing_or_not_shared(monkeypatch: pytest.MonkeyPatch, error) -> None:
    def refuse(userdata, name):
        raise getattr(userdata, error)(name)

    _fake_colab(monkeypatch, refuse)
    assert llm.find_api_key() is None


def test_make_explainer(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(llm.make_explainer("auto"), wording.OfflineExplainer)
    assert isinstance(llm.make_explainer("offline", api_key="k"), wording.OfflineExplainer)
    gemini = llm.make_explainer("gemini", model_id="gemini-2.5-pro", timeout_s=5)
    assert isinstance(gemini, llm.GeminiExplainer) and gemini.model_id == "gemini-2.5-pro"
    assert gemini.timeout_s == 5
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert isinstance(llm.make_explainer("auto"), llm.GeminiExplainer)
    with pytest.raises(ValueError, match="kind"):
        llm.make_explainer("cloud")  # type: ignore[arg-type]


def test_import_makes_no_client_and_no_sdk_import() -> None:
    import subprocess

    code = "import sys, course_utils.llm; print('google.genai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_numpy_statistics_work_offline_and_in_the_prompt() -> None:
    stats = {
        "side": "right",
        "near_skull": np.bool_(True),
        "centroid_x": np.float32(0.8),
        "centroid_y": np.float64(0.3),
        "spread": np.float32(0.05),
        "peak": np.array([1, 2]),
    }
    text = wording.OfflineExplainer().explain(b"", b"", "meningioma", PROBS, "Grad-CAM", stats).text
    assert "near the skull" in text and "80% of the width" in text and "focal" in text
    prompt = llm.build_prompt("meningioma", PROBS, "Grad-CAM", stats)
    assert '"near_skull": true' in prompt and '"peak": [1, 2]' in prompt
