"""Server settings: [server] in config.toml, overridden by RECOMMENDER_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from api import ServerSettings, create_app
from recommender.errors import ConfigError


def write_config(root: Path, server: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(f"[server]\n{server}\n")
    return root


def test_defaults(tmp_path):
    s = ServerSettings.load(tmp_path, environ={})
    assert (s.max_body_bytes, s.admin_token, s.cors_origins, s.store, s.models) == (
        65536, None, (), None, None)


def test_file_then_environment(tmp_path):
    root = write_config(tmp_path / "ws", 'max_body_bytes = 4096\nstore = "data/s.sqlite"\n'
                                         'cors_origins = ["https://app.example.com"]\n'
                                         'workers = 3')
    s = ServerSettings.load(root, environ={})
    assert s.max_body_bytes == 4096 and s.store == root / "data/s.sqlite" and s.workers == 3
    assert s.cors_origins == ("https://app.example.com",)
    s = ServerSettings.load(root, environ={
        "RECOMMENDER_MAX_BODY_BYTES": "8192", "RECOMMENDER_ADMIN_TOKEN": "t" * 32,
        "RECOMMENDER_MODELS": "/srv/models", "RECOMMENDER_CORS_ORIGINS": "https://a, https://b"})
    assert s.max_body_bytes == 8192 and s.admin_token == "t" * 32
    assert s.models == Path("/srv/models") and s.cors_origins == ("https://a", "https://b")
    assert "t" * 32 not in repr(s)


def test_the_viewer_token_comes_from_the_file_or_the_environment(tmp_path):
    root = write_config(tmp_path / "ws", f'viewer_token = "{"v" * 20}"')
    assert ServerSettings.load(root, environ={}).viewer_token == "v" * 20
    s = ServerSettings.load(root, environ={"RECOMMENDER_VIEWER_TOKEN": "w" * 24})
    assert s.viewer_token == "w" * 24 and s.admin_token is None and "w" * 24 not in repr(s)
    with pytest.raises(ConfigError, match="server.viewer_token.*must differ from admin_token"):
        ServerSettings.load(root, environ={"RECOMMENDER_ADMIN_TOKEN": "v" * 20})


@pytest.mark.parametrize(("server", "key"), [
    ("max_body_bytes = 10", "server.max_body_bytes"),
    ('max_body_bytes = "big"', "server.max_body_bytes"),
    ('admin_token = "short"', "server.admin_token"),
    ('admin_token = ""', "server.admin_token"),
    ('viewer_token = "short"', "server.viewer_token"),
    ("viewer_token = 1234567890123456789", "server.viewer_token"),
    (f'admin_token = "{"a" * 20}"\nviewer_token = "{"a" * 20}"', "server.viewer_token"),
    ("cors_origins = 5", "server.cors_origins"),
    ("workers = 0", "server.workers"),
    ("colour = 1", "server.colour"),
    ("store = 3", "server.store"),
    ("max_body_bytes = inf", "server.max_body_bytes"),
    ("max_body_bytes = nan", "server.max_body_bytes"),
    ("max_body_bytes = 1e18", "server.max_body_bytes"),
    ("reload_poll_seconds = inf", "server.reload_poll_seconds"),
    ("reload_poll_seconds = nan", "server.reload_poll_seconds"),
    ("threads = 1000000", "server.threads"),
    ("timeout = -inf", "server.timeout"),
    ('client_tokens = "app"', "server.client_tokens"),
    ("client_tokens = 5", "server.client_tokens"),
    ('client_tokens = { app = "short" }', "server.client_tokens"),
    ('client_tokens = { app = 12345678901234567890 }', "server.client_tokens"),
    (f'client_tokens = {{ app = "{"a b" * 8}" }}', "server.client_tokens"),
    (f'client_tokens = {{ app = "{"é" * 20}" }}', "server.client_tokens"),
    (f'client_tokens = {{ "a pp" = "{"a" * 20}" }}', "server.client_tokens"),
    (f'client_tokens = {{ admin = "{"a" * 20}" }}', "server.client_tokens"),
    (f'client_tokens = {{ app = "{"a" * 20}", web = "{"a" * 20}" }}', "server.client_tokens"),
    (f'admin_token = "{"a" * 20}"\nclient_tokens = {{ app = "{"a" * 20}" }}',
     "server.client_tokens"),
])
def test_bad_settings_name_the_key(tmp_path, server, key):
    root = write_config(tmp_path / "ws", server)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ServerSettings.load(root, environ={})


def test_client_tokens_come_from_the_file_or_the_environment(tmp_path):
    root = write_config(tmp_path / "ws", f'client_tokens = {{ app = "{"p" * 20}" }}')
    assert ServerSettings.load(root, environ={}).client_tokens == {"app": "p" * 20}
    s = ServerSettings.load(root, environ={
        "RECOMMENDER_CLIENT_TOKENS": f" app={'q' * 20} , crm-outbound={'r' * 16}"})
    assert s.client_tokens == {"app": "q" * 20, "crm-outbound": "r" * 16}
    assert "q" * 20 not in repr(s) and ServerSettings.load(tmp_path, environ={}).client_tokens == {}


SECRET = "c2VjcmV0LXRva2VuLXZhbHVl"


@pytest.mark.parametrize("value", [
    SECRET, SECRET + "==", f"app={SECRET},app={SECRET[::-1]}", f"app={SECRET},",
    f"={SECRET}", f"app={SECRET[:8]}", f"app={SECRET[:12]},{SECRET[12:]}", f"admin={SECRET}",
    f"app={SECRET},crm={SECRET}", f"app={SECRET} x"])
def test_bad_client_tokens_in_the_environment_are_refused_without_their_text(tmp_path, value):
    """A name forgotten puts the token where the name goes: no part of an entry is echoed."""
    with pytest.raises(ConfigError, match=r"RECOMMENDER_CLIENT_TOKENS.*entry \d") as info:
        ServerSettings.load(tmp_path, environ={"RECOMMENDER_CLIENT_TOKENS": value})
    for part in (SECRET[:6], SECRET[-6:], SECRET[::-1][:6], SECRET[12:18]):
        assert part not in str(info.value)


def test_an_empty_folder_is_refused_with_the_way_out(tmp_path):
    with pytest.raises(ConfigError, match="recommender quickstart"):
        create_app(tmp_path, environ={})


def test_cors_allows_only_listed_origins(api_workspace):
    from api_support import make_app

    app = make_app(api_workspace.root, cors_origins=["https://app.example.com"])
    client = app.test_client()
    ok = client.get("/healthz", headers={"Origin": "https://app.example.com"})
    other = client.get("/healthz", headers={"Origin": "https://evil.example.com"})
    assert ok.headers.get("Access-Control-Allow-Origin") == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in other.headers
    app.extensions["recommender"].slot.close()
