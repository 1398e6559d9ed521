"""Where Ollama is: OLLAMA_HOST, --host or `ollama_host` read as Ollama reads them; a value that
cannot be an address is exit 2 naming where it came from — never a traceback, and never for
--version or --help (the `ollama` package reads OLLAMA_HOST when it is imported)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.engine.host import HostError, host_name, parse_host

# the values that crashed every command, even --version
DOOR_VALUES = ["::1", "::", "127.0.0.1:99999", "http://", "fe80::1%eth0"]


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("", "http://127.0.0.1:11434"),
        ("::1", "http://[::1]:11434"),  # a bare IPv6 address, as Ollama's envconfig.Host() takes it
        ("::", "http://[::1]:11434"),  # listen-everywhere means this machine, like 0.0.0.0
        ("fe80::1%eth0", "http://[fe80::1%eth0]:11434"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("http://[::1]", "http://[::1]:80"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        (":9", "http://127.0.0.1:9"),
        ("box", "http://box:11434"),
        ("http://box", "http://box:80"),  # Ollama's defaults: 80 for http://, 443 for https://
        ("https://x.org", "https://x.org:443"),
        ("HTTP://box:1/", "http://box:1"),
        (" 'gpu-box:1234' ", "http://gpu-box:1234"),  # quotes and spaces dropped, as Ollama does
        ("example.com:56789/path/", "http://example.com:56789/path"),
        ("ollama.com", "https://ollama.com:443"),
    ],
)
def test_hosts_are_read_as_ollama_reads_them(raw, url):
    assert parse_host(raw) == url


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("127.0.0.1:99999", "port '99999' is not a number from 1 to 65535"),
        ("box:0", "port '0'"),
        ("box:", "port ''"),
        ("http://", "no host after http://"),
        ("ftp://box", "scheme 'ftp'"),
        ("[1.2.3.4]:1", "not an IPv6 address"),
        ("[::1", "not closed"),
        ("[::1]x", "only ':PORT' may follow"),
        ("1::2::3", "IPv6 address with a port goes in brackets"),
        ("fe80::1%e$", "IPv6 address with a port goes in brackets"),
        ("gpu box", "no spaces"),
        ("user@box", "no user name"),
        ("bad_host!", "not a host name"),
    ],
)
def test_a_value_that_cannot_be_an_address_says_why(raw, words):
    with pytest.raises(HostError) as e:
        parse_host(raw)
    assert words in str(e.value)


def test_host_name_for_messages():
    assert [host_name(parse_host(v)) for v in ("::1", "box:1", "https://x.org/p")] == ["::1", "box", "x.org"]


# -- in-process: the key and where it came from --------------------------------------------------


@pytest.mark.parametrize(
    ("how", "source"),
    [
        ("env", "environment variable OLLAMA_HOST"),
        ("rhtui_env", "environment variable RHTUI_OLLAMA_HOST"),
        ("flag", "command-line flag --host"),
        ("file", "config file"),
    ],
)
def test_a_bad_host_is_exit_2_naming_its_source(how, source, tmp_path, monkeypatch):
    args = ["report", "--data-dir", str(tmp_path)]
    if how == "env":
        monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:99999")
    elif how == "rhtui_env":
        monkeypatch.setenv("RHTUI_OLLAMA_HOST", "127.0.0.1:99999")
    elif how == "flag":
        args = ["--host", "127.0.0.1:99999", *args]
    else:
        cfg = tmp_path / "rhtui.toml"
        cfg.write_text('ollama_host = "127.0.0.1:99999"\n')
        args = ["--config", str(cfg), *args]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "ollama_host" in r.output and "port '99999'" in r.output and source in r.output, r.output
    assert "Traceback" not in r.output


def test_a_bare_ipv6_host_is_accepted(tmp_path):
    r = CliRunner().invoke(app, ["--host", "::1", "report", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1 and "no database" in r.output, r.output  # got past the host to the database


# -- a fresh process: the import of `ollama` happens there -------------------------------------


def _rhtui(args: list[str], ollama_host: str, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHTUI_")}
    env.update(OLLAMA_HOST=ollama_host, XDG_CONFIG_HOME=str(tmp_path / "c"), XDG_DATA_HOME=str(tmp_path / "d"),
               NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "rhtui.commands.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("value", DOOR_VALUES)
def test_version_never_touches_the_host(value, tmp_path):
    r = _rhtui(["--version"], value, tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("rhtui "), (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


def test_help_never_touches_the_host(tmp_path):
    for value in ("127.0.0.1:99999", "::1"):
        r = _rhtui(["--help"], value, tmp_path)
        assert r.returncode == 0 and "Usage" in r.stdout, (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr


def test_a_command_with_a_bad_ollama_host_exits_2_naming_it(tmp_path):
    r = _rhtui(["report"], "127.0.0.1:99999", tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "environment variable OLLAMA_HOST" in r.stderr and "port '99999'" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_the_ollama_package_imports_whatever_ollama_host_holds(tmp_path):
    code = "import os, rhtui.engine.backend as b; print(os.environ['OLLAMA_HOST'], b.ollama.AsyncClient.__name__)"
    env = {**os.environ, "OLLAMA_HOST": "::1x"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["::1x", "AsyncClient"], r.stderr  # and put back after
