"""Where Ollama listens: an ``OLLAMA_HOST`` value (or ``--host``, ``ollama_host``) read as
Ollama itself reads it, and checked before anything connects.

`parse_host` follows Ollama's ``envconfig.Host()``: an optional ``http://`` or ``https://``
scheme; ``host``, ``host:port``, ``:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address
(``::1``, ``fe80::1%eth0``); surrounding quotes and spaces are dropped and a path is kept (for
a proxy that serves Ollama under one). Without a port: 11434 without a scheme, 80 with
``http://``, 443 with ``https://``. Where Ollama silently falls back to a default (a port it
cannot read, nothing after the scheme, another scheme), `parse_host` refuses with a
`HostError` that says what is wrong, so a typo is never a connection to somewhere else.
A listen-everywhere address (``0.0.0.0``, ``::``) means this machine: its loopback address.

`ollama_import_env` makes ``import ollama`` safe: the package builds a default client from
``OLLAMA_HOST`` when it is imported and raises on a value it cannot parse, before any of our
own checks could say which value and where it came from. rhtui always passes its own,
validated host to the clients it makes, so the import runs without the variable.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Iterator

DEFAULT_PORT = 11434
DEFAULT_HOST_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
SCHEME_PORTS = {"http": 80, "https": 443}

_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_ZONE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_EXAMPLES = "e.g. 127.0.0.1:11434, gpu-box, [::1]:11434 or https://ollama.example.org"


class HostError(ValueError):
    """A host value that cannot be an address of Ollama; str() says what is wrong with it."""


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise HostError(f"the port {text!r} is not a number from 1 to 65535 ({_EXAMPLES})")
    return int(text)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ipv6(text: str) -> bool:
    """An IPv6 address, with a zone (``%eth0``) of plain characters if any."""
    ip = _ip(text)
    return ip is not None and ip.version == 6 and ("%" not in text or bool(_ZONE.match(text.split("%", 1)[1])))


def _split(hostport: str) -> tuple[str, int | None]:
    """(host, port or None) as Go's net.SplitHostPort reads them, with Ollama's fallback to a
    bare IPv6 address when that fails."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise HostError(f"an IPv6 address opened with '[' is not closed with ']' ({_EXAMPLES})")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise HostError(f"only ':PORT' may follow ']' ({_EXAMPLES})")
        if not _ipv6(host):
            raise HostError(f"{host!r} in brackets is not an IPv6 address ({_EXAMPLES})")
        return host, _port(rest[1:]) if rest else None
    colons = hostport.count(":")
    if colons == 0:
        return hostport, None
    if colons == 1:
        host, port = hostport.split(":")
        return host, _port(port)
    # more than one colon: not host:port, so (as Ollama reads it) an IPv6 address without brackets
    if not _ipv6(hostport):
        raise HostError(
            f"not an address: an IPv6 address with a port goes in brackets, [ADDRESS]:PORT ({_EXAMPLES})"
        )
    return hostport, None


def parse_host(value: str | None) -> str:
    """An Ollama host value as a URL (``scheme://host:port[/path]``); raises `HostError`."""
    text = (value or "").strip().strip("\"'").strip()
    if not text:
        return DEFAULT_HOST_URL
    if any(ch.isspace() for ch in text) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise HostError(f"an address has no spaces or control characters ({_EXAMPLES})")
    scheme, sep, rest = text.partition("://")
    if sep:
        scheme = scheme.lower()
        if scheme not in SCHEME_PORTS:
            raise HostError(f"the scheme {scheme!r} is not one Ollama speaks: use http:// or https://")
        default_port = SCHEME_PORTS[scheme]
    elif text.lower() == "ollama.com":  # as Ollama reads it: its cloud, over https
        scheme, rest, default_port = "https", "ollama.com", 443
    else:
        scheme, rest, default_port = "http", text, DEFAULT_PORT
    hostport, _, path = rest.partition("/")
    path = path.strip("/")
    if "@" in hostport or "?" in hostport or "#" in hostport:
        raise HostError(f"an address has no user name, query or fragment ({_EXAMPLES})")
    if not hostport:
        if sep:
            raise HostError(f"there is no host after {scheme}:// ({_EXAMPLES})")
        hostport = "127.0.0.1"
    host, port = _split(hostport)
    if not host:
        host = "127.0.0.1"  # ":PORT" is this machine
    ip = _ip(host)
    if ip is not None and ip.is_unspecified:  # listen-everywhere: connect to this machine
        ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
        host = str(ip)
    if ip is None and not _HOSTNAME.match(host):
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_host = ""
        if not _HOSTNAME.match(ascii_host):
            raise HostError(f"{host!r} is not a host name or an IP address ({_EXAMPLES})")
    shown = f"[{host}]" if ip is not None and ip.version == 6 else host
    url = f"{scheme}://{shown}:{port if port is not None else default_port}"
    return f"{url}/{path}" if path else url


def host_name(url: str) -> str:
    """The host part of a URL made by `parse_host` (without brackets, port or path)."""
    hostport = url.partition("://")[2].partition("/")[0]
    if hostport.startswith("["):
        return hostport[1 : hostport.find("]")]
    return hostport.rpartition(":")[0] or hostport


@contextlib.contextmanager
def ollama_import_env() -> Iterator[None]:
    """Within: no OLLAMA_HOST in the environment (see the module's docstring); restored after."""
    saved = os.environ.pop("OLLAMA_HOST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["OLLAMA_HOST"] = saved
