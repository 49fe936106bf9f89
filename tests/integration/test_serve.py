"""``nerstream serve`` as a real process on loopback: the happy path, every error and limit, auth,
admission (429), metrics, dynamic batching and the OpenAPI document, against the running server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from models.runtime import NerModel
from streams.model_loader import load_model
from streams.settings import load_settings
from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.integration

TEXT = "王小明在北京的清华大学读书。"
#: Limits of the open server, small enough to hit with short bodies.
LIMITS = {
    "serve.max_texts": "4",
    "serve.max_text_chars": "40",
    "serve.max_request_chars": "100",
    "serve.max_body_bytes": "4096",
}
TOKEN = "test-token-0123456789"


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)


@dataclass
class ServeProcess:
    """One ``nerstream serve`` with its own port and log."""

    log_path: Path
    overrides: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NERSTREAM_")}
        for key, value in {**self.overrides, "serve.port": str(self.port)}.items():
            section, name = key.split(".")
            env[f"NERSTREAM_{section}_{name}".upper()] = value
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "serve"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 180  # generous: the machine may be loaded
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            if self.call("GET", "/readyz").status == 200:
                return self
            time.sleep(0.3)
        raise AssertionError(f"not ready in time:\n{self.log()}")

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> Reply:
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers=dict(headers)
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers.items()), error.read())
        except (urllib.error.URLError, ConnectionError):
            return Reply(0, {}, b"")

    def post(self, document: Any, headers: Mapping[str, str] = {}) -> Reply:
        raw = json.dumps(document, ensure_ascii=False).encode("utf-8")
        return self.call("POST", "/v1/entities", raw, headers)

    def metric(self, name: str) -> float:
        text = self.call("GET", "/metrics").body.decode()
        return sum(
            float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith(name)
        )

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """An open server with small limits and a 100 ms batch window (concurrent requests merge)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    serving = ServeProcess(log, {**LIMITS, "serve.batch_window_ms": "100"}).start()
    yield serving
    assert serving.stop() == 0, serving.log()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server with a bearer token (from a file) that admits one pending request at a time
    and holds it for its 5 s batch window (time enough to be seen pending on a loaded machine)."""
    directory = tmp_path_factory.mktemp("guarded")
    token_file = directory / "token"
    token_file.write_text(TOKEN + "\n")
    overrides = {
        "serve.auth_token_file": str(token_file),
        "serve.max_pending_requests": "1",
        "serve.batch_window_ms": "5000",
    }
    serving = ServeProcess(directory / "serve.log", overrides).start()
    yield serving
    assert serving.stop() == 0, serving.log()


@pytest.fixture(scope="module")
def model() -> NerModel:
    """The model as the servers load it (the same default settings: the same provider and
    precision on any machine)."""
    return load_model(load_settings(env={}).model)


def openapi_validator(served: ServeProcess, schema: str) -> Draft202012Validator:
    document = served.call("GET", "/openapi.json").json()
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{schema}"})


def test_texts_get_the_entities_annotate_gives(server: ServeProcess, model: NerModel) -> None:
    texts = [TEXT, "今天天气很好", "（ＵＲＧＥＮＴ）患者李芳，女，上海人 🙂"]
    reply = server.post({"texts": texts})
    assert reply.status == 200, reply.body
    body = reply.json()
    openapi_validator(server, "EntitiesResponse").validate(body)
    assert body["model"] == {"name": model.manifest.name, "version": model.manifest.version}
    expected = [[entity.as_dict() for entity in found] for found in model.predict(texts)]
    assert [result["entities"] for result in body["results"]] == expected
    assert {e["type"] for e in body["results"][0]["entities"]} >= {"PER", "LOC", "ORG"}
    for text, result in zip(texts, body["results"], strict=True):
        for entity in result["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["text"]


def test_records_echo_their_ids_and_sources_in_order(server: ServeProcess) -> None:
    records = [
        {"id": "b", "text": "李华去了上海", "source": "news"},
        {"id": "a", "text": "没有实体"},
    ]
    body = server.post({"records": records}).json()
    assert [(r.get("id"), r.get("source")) for r in body["results"]] == [
        ("b", "news"),
        ("a", None),
    ]
    assert body["results"][1]["entities"] == []


BAD_REQUESTS = [
    (b"\xff\xfe{}", 400, "not valid UTF-8"),
    (b'{"texts": ["\xe5\x8c"]}', 400, "not valid UTF-8"),
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "not valid JSON"),
    (b"[" * 3000, 400, ""),
    (b'["a"]', 400, "must be a JSON object"),
    (b'{"texts": "a"}', 400, "non-empty array"),
    (b'{"texts": []}', 400, "non-empty array"),
    (b'{"texts": [1]}', 400, "must be a string"),
    (b'{"texts": ["\\udc00"]}', 400, "not valid Unicode"),
    (b'{"records": [{"text": "a"}]}', 400, '"id"'),
    (b'{"texts": ["a"], "mode": "fast"}', 400, "unknown: mode"),
    (b'{"texts": ["a", "b", "c", "d", "e"]}', 413, "serve.max_texts"),
    (json.dumps({"texts": ["北" * 41]}).encode(), 413, "serve.max_text_chars"),
    (
        json.dumps({"texts": ["北" * 40, "京" * 40, "市" * 21]}).encode(),
        413,
        "serve.max_request_chars",
    ),
    (json.dumps({"texts": ["a" * 5000]}).encode(), 413, "serve.max_body_bytes"),
]


@pytest.mark.parametrize(("raw", "status", "detail"), BAD_REQUESTS)
def test_every_bad_request_is_a_json_error_and_the_server_lives_on(
    server: ServeProcess, raw: bytes, status: int, detail: str
) -> None:
    reply = server.call("POST", "/v1/entities", raw, {"Content-Type": "application/json"})
    assert reply.status == status, reply.body
    body = reply.json()
    openapi_validator(server, "Error").validate(body)
    if status == 413:
        assert body["error"]["limit"] == detail
        assert body["error"]["max"] == int(LIMITS[detail])
    else:
        assert detail in body["error"]["message"]
    assert server.post({"texts": [TEXT]}).status == 200


def test_a_body_larger_than_its_limit_is_refused_before_it_is_read(server: ServeProcess) -> None:
    # Streamed without a Content-Length: aiohttp stops reading at serve.max_body_bytes.
    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"]}'

    request = urllib.request.Request(
        server.base + "/v1/entities",
        data=chunks(),
        method="POST",
        headers={"Transfer-Encoding": "chunked"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 413
    assert json.loads(caught.value.read())["error"]["limit"] == "serve.max_body_bytes"


def test_unknown_routes_and_methods_are_json_errors(server: ServeProcess) -> None:
    missing = server.call("GET", "/v2/entities")
    assert (missing.status, missing.json()["error"]["code"]) == (404, "not_found")
    wrong = server.call("GET", "/v1/entities")
    assert (wrong.status, wrong.json()["error"]["code"]) == (405, "method_not_allowed")
    assert "POST" in wrong.headers["Allow"]


def test_concurrent_requests_are_merged_into_model_calls_and_split_back(
    server: ServeProcess,
) -> None:
    texts = [
        f"{name}在{city}工作。"
        for name in ("张伟", "李娜", "王芳", "刘洋")
        for city in ("上海", "成都", "广州", "武汉")
    ]
    alone = {text: server.post({"texts": [text]}).json()["results"] for text in texts}
    calls_before = server.metric("nerstream_serve_batch_requests_count")
    requests_before = server.metric("nerstream_serve_batch_requests_sum")
    replies: dict[str, Any] = {}
    start = threading.Barrier(len(texts))

    def send(text: str) -> None:
        start.wait()
        replies[text] = server.post({"texts": [text]}).json()["results"]

    threads = [threading.Thread(target=send, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert replies == alone  # each request got its own text's entities back
    calls = server.metric("nerstream_serve_batch_requests_count") - calls_before
    merged = server.metric("nerstream_serve_batch_requests_sum") - requests_before
    assert merged == len(texts)
    assert calls < len(texts), "no two concurrent requests shared a model call"


def test_metrics_count_requests_by_status_and_time_them(server: ServeProcess) -> None:
    server.post({"texts": [TEXT]})
    server.call("POST", "/v1/entities", b"{")
    text = server.call("GET", "/metrics").body.decode()
    assert 'nerstream_http_requests_total{route="/v1/entities",status="200"}' in text
    assert 'nerstream_http_requests_total{route="/v1/entities",status="400"}' in text
    assert 'nerstream_http_request_duration_seconds_bucket{le="0.05",route="/v1/entities"}' in text
    assert "nerstream_serve_batch_size_bucket" in text
    assert 'nerstream_model_info{name="zh-cnn-crf"' in text


def test_probes_answer(server: ServeProcess) -> None:
    assert server.call("GET", "/healthz").json()["alive"] is True
    ready = server.call("GET", "/readyz").json()
    assert ready["ready"] is True
    assert ready["model"]["name"] == "zh-cnn-crf"


def test_the_openapi_document_describes_what_the_server_accepts(server: ServeProcess) -> None:
    document = server.call("GET", "/openapi.json").json()
    assert set(document["paths"]) == {
        "/v1/entities",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    for path, operations in document["paths"].items():
        for method in operations:
            if method == "get":
                assert server.call("GET", path).status == 200, path
    request = openapi_validator(server, "EntitiesRequest")
    candidates: list[Any] = [
        {"texts": ["a"]},
        {"texts": ["a"] * 4},
        {"texts": ["a"] * 5},
        {"texts": []},
        {"texts": ["北" * 40]},
        {"texts": ["北" * 41]},
        {"texts": [None]},
        {"records": [{"id": "1", "text": "a"}]},
        {"records": [{"id": "1", "text": "a", "source": "s"}]},
        {"records": [{"id": "1", "text": "a", "lang": "zh"}]},
        {"records": [{"id": 1, "text": "a"}]},
        {"records": [{"text": "a"}]},
        {"texts": ["a"], "records": [{"id": "1", "text": "a"}]},
        {},
        [],
        "text",
    ]
    response = openapi_validator(server, "EntitiesResponse")
    error = openapi_validator(server, "Error")
    for candidate in candidates:
        reply = server.post(candidate)
        assert (reply.status == 200) == request.is_valid(candidate), (candidate, reply.body)
        (response if reply.status == 200 else error).validate(reply.json())
    schema = document["components"]["schemas"]["EntitiesRequest"]["oneOf"][0]["properties"]
    assert schema["texts"]["maxItems"] == int(LIMITS["serve.max_texts"])


def test_a_busy_port_is_a_clear_exit_2(server: ServeProcess) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "streams.cli", "serve", "--port", str(server.port)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("NERSTREAM_")},
    )
    assert second.returncode == 2
    assert f"cannot listen on 127.0.0.1:{server.port}" in second.stderr


def test_auth_needs_the_bearer_token_on_the_api_only(guarded: ServeProcess) -> None:
    body = {"texts": [TEXT]}
    missing = guarded.post(body)
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    assert guarded.post(body, {"Authorization": "Bearer wrong"}).status == 401
    assert guarded.post(body, {"Authorization": f"Basic {TOKEN}"}).status == 401
    assert guarded.post(body, {"Authorization": f"Bearer {TOKEN}"}).status == 200
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert guarded.call("GET", path).status == 200, path
    document = guarded.call("GET", "/openapi.json").json()
    assert document["paths"]["/v1/entities"]["post"]["security"] == [{"bearer": []}]
    assert TOKEN not in guarded.log()


def test_one_request_over_max_pending_is_429(guarded: ServeProcess) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first: list[Reply] = []
    holder = threading.Thread(target=lambda: first.append(guarded.post({"texts": [TEXT]}, auth)))
    holder.start()
    deadline = time.monotonic() + 60
    # The first request waits out the 5 s batch window: it is pending meanwhile.
    while guarded.call("GET", "/healthz").json()["pending"] != 1:
        assert time.monotonic() < deadline, "the first request never became pending"
        time.sleep(0.05)
    refused = guarded.post({"texts": [TEXT]}, auth)
    holder.join(120)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["limit"] == "serve.max_pending_requests"
    assert first[0].status == 200
