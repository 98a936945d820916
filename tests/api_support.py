"""API test support (a pytest plugin loaded by conftest): a private copy of the sample workspace,
the app, and a client that checks every response against the published OpenAPI document."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from werkzeug import Request

from api import ServerSettings, create_app
from recommender.workspace import Workspace

ADMIN_TOKEN = "test-admin-token-0123456789"
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """One HTTP request on a fresh connection: (status, content type, parsed JSON or text)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, ctype, text = r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        status, ctype, text = e.code, e.headers["Content-Type"], e.read().decode()
    return status, ctype, json.loads(text) if "json" in (ctype or "") else text


@contextmanager
def serving(root: Path, log_path: Path, *args: str, env: Mapping[str, str] | None = None
            ) -> Iterator[tuple[str, subprocess.Popen]]:
    """``recommender serve`` (gunicorn) over ``root`` on a free loopback port, its output in
    ``log_path``, until ``/readyz`` answers 200; yields the base URL and the process, and
    stops the server (SIGTERM, then kill) afterwards."""
    port = free_port()
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items()
               if k != "PROMETHEUS_MULTIPROC_DIR"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "recommender.cli", "serve", "--dir", str(root), "--port",
             str(port), *args], stdout=log, stderr=subprocess.STDOUT, env=environ)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if call(base, "GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("server did not start:\n" + log_path.read_text())
                time.sleep(0.2)
            yield base, process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 if absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def copy_workspace(source: Workspace, target: Path) -> Workspace:
    """A writable copy of a workspace (store, models and all)."""
    shutil.copytree(source.root, target)
    return Workspace(target)


def check_problem(response: Any, status: int) -> dict[str, Any]:
    """Assert ``response`` is a problem-details answer with ``status``; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data(as_text=True))
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "/tmp/" not in text and "site-packages" not in text
    return body


class ContractClient(FlaskClient):
    """A test client that validates each response against the app's OpenAPI document."""

    openapi: OpenAPI | None = None

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        if response.status_code >= 400:
            check_problem(response, response.status_code)
        if self.openapi is not None and response.request is not None:
            try:
                sent = response.request
                request = Request.from_values(  # the operation, without the consumed body
                    path=sent.path, method=sent.method,
                    query_string=sent.environ.get("QUERY_STRING", ""), base_url="http://localhost")
                self.openapi.validate_response(WerkzeugOpenAPIRequest(request),
                                               WerkzeugOpenAPIResponse(response))
            except (PathNotFound, OperationNotFound):
                pass  # not an operation of the API (a 404 or 405 probe, /docs)
        return response


def make_app(root: Path, *, plugin_manager: Any = None, **settings: Any) -> Flask:
    """The app over ``root`` with ``settings`` (environment ignored), checked by ContractClient."""
    app = create_app(settings=ServerSettings.load(root, environ={}, **settings),
                     plugin_manager=plugin_manager)
    app.test_client_class = ContractClient
    ContractClient.openapi = OpenAPI.from_dict(
        app.extensions["recommender"].api.spec.to_dict(),
        config=Config(extra_media_type_deserializers={"application/problem+json": json.loads}))
    return app


@pytest.fixture(scope="module")
def api_workspace(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
                  ) -> Workspace:
    """A private, writable copy of the trained sample workspace for one test module."""
    return copy_workspace(sample_workspace, tmp_path_factory.mktemp("api") / "ws")


@pytest.fixture(scope="module")
def app(api_workspace: Workspace) -> Iterator[Flask]:
    app = make_app(api_workspace.root, admin_token=ADMIN_TOKEN)
    yield app
    app.extensions["recommender"].slot.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
