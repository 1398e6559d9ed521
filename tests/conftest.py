"""Suite-wide guards: no test reaches any address but loopback, and no test reads the
user's own config or data (XDG dirs point into a temporary folder). Also `replay`: Ollama's
documented answers replayed on loopback (tests/ollama_replay.py)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from tests.ollama_replay import replayed

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if host not in ("localhost",):
                raise OSError(f"test tried to reach {host!r}: only loopback is allowed in tests") from None
            return
        if not ip.is_loopback:
            raise OSError(f"test tried to reach {host}: only loopback is allowed in tests")


def _guarded_connect(self, address):
    _check(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    yield


@pytest.fixture(autouse=True)
def _isolated_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # the per-user engine locks (one engine per Ollama host) of this test alone
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for var in list(__import__("os").environ):
        if var.startswith("RHTUI_") or var in ("OLLAMA_HOST", "OLLAMA_NUM_PARALLEL"):
            monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture
async def replay():
    """(Replay, OllamaBackend): queue fixtures on the Replay, call Ollama through the backend."""
    async with replayed() as pair:
        yield pair
