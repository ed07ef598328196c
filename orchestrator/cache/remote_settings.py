"""Which remote cache server a run uses, and how: its settings, read from the environment.

    ORCHESTRATOR_REMOTE_CACHE=https://cache.example.org/tinytorch   the server (the user's)
    ORCHESTRATOR_REMOTE_CACHE_HOSTS=cache.example.org,other:8080    hosts graph.toml may name
    ORCHESTRATOR_CACHE_KEY=...            HMAC-SHA256 key; without it nothing remote is trusted
    ORCHESTRATOR_REMOTE_CACHE_TOKEN=...   optional: `Authorization: Bearer ...`, sent only to
                                          the server ORCHESTRATOR_REMOTE_CACHE names
    ORCHESTRATOR_REMOTE_CACHE_MODE=read-write | read-only | off   (default: read-write)
    ORCHESTRATOR_REMOTE_CACHE_TIMEOUT=2   seconds a request may take, start to end

Whose server: the user's. A URL in graph.toml (`[project] remote_cache`, which any pull
request can change) is used only if the user allows its host (ORCHESTRATOR_REMOTE_CACHE_HOSTS
or $XDG_CONFIG_HOME/orchestrator/remote-cache-hosts, one host a line); if not, NotAllowed
says so and how to allow it. The token goes only to the server the user named with it
(`Settings.token` is None for graph.toml's server). A bad setting is a ConfigError, one
line; `secrets` are what no line may show.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.cache.remote_entry import ENV_KEY, ConfigError, signing_key
from orchestrator.cache.remote_lines import short
from orchestrator.core import urls
from orchestrator.core.urls import redact

ENV_URL = "ORCHESTRATOR_REMOTE_CACHE"
ENV_HOSTS = "ORCHESTRATOR_REMOTE_CACHE_HOSTS"
ENV_TOKEN = "ORCHESTRATOR_REMOTE_CACHE_TOKEN"
ENV_MODE = "ORCHESTRATOR_REMOTE_CACHE_MODE"
ENV_TIMEOUT = "ORCHESTRATOR_REMOTE_CACHE_TIMEOUT"
CREDENTIALS_INSTEAD = f"use {ENV_URL} or {ENV_TOKEN}"
HOSTS_FILE = "orchestrator/remote-cache-hosts"      # under $XDG_CONFIG_HOME (~/.config)
TIMEOUT = 2.0                 # seconds: one request, start to end
MAX_HOSTS_FILE_BYTES = 64 << 10
TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")     # RFC 6750's b64token: nothing to inject


class Mode(str, Enum):
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"
    OFF = "off"


MODES = tuple(m.value for m in Mode)


class Origin(Enum):
    """Who named the server: the user's environment, or the repository (graph.toml)."""
    ENVIRONMENT = ENV_URL
    GRAPH = "graph.toml [project] remote_cache"


class NotAllowed(ConfigError):
    """The repository names a server the user has not allowed."""


def url_problem(url: str, where: str, credentials: bool = True) -> str:
    """urls.url_problem, saying where credentials go instead."""
    return urls.url_problem(url, where, credentials, instead=CREDENTIALS_INSTEAD)


def host_of(url: str) -> str:
    """host, or host:port when the URL names a port (lower case)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


def allowed_hosts(environ) -> tuple[set[str], Path | None]:
    """The hosts the user lets graph.toml name: ORCHESTRATOR_REMOTE_CACHE_HOSTS (commas)
    and the user's hosts file (one a line, # comments), and that file's path."""
    found = {h.strip().lower() for h in environ.get(ENV_HOSTS, "").split(",") if h.strip()}
    config = environ.get("XDG_CONFIG_HOME", "").strip()
    home = environ.get("HOME", "").strip()
    base = Path(config) if config else (Path(home) / ".config" if home else None)
    path = base / HOSTS_FILE if base else None
    if path is not None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read(MAX_HOSTS_FILE_BYTES)
        except OSError:
            text = ""
        found |= {line.split("#")[0].strip().lower() for line in text.splitlines()} - {""}
    return found, path


def _allows(allowed: set[str], url: str) -> bool:
    """An allowed `host` takes any port of it; `host:port` only that port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host in allowed or f"{host}:{port}" in allowed


@dataclass(frozen=True)
class Settings:
    url: str                    # the base URL, without a trailing slash
    key: bytes | None           # the HMAC key; None: nothing remote can be trusted
    token: str | None           # sent as a Bearer token (only to the user's own server)
    mode: Mode
    timeout: float              # each request's deadline, seconds
    origin: Origin = Origin.ENVIRONMENT
    token_withheld: bool = False     # a token is set, but the server is graph.toml's

    @property
    def readable(self) -> bool:
        return self.mode is not Mode.OFF and self.key is not None

    @property
    def writable(self) -> bool:
        return self.mode is Mode.READ_WRITE and self.key is not None

    @classmethod
    def from_environment(cls, environ, configured: str = "") -> Settings | None:
        """None when no cache is configured or mode is off; ConfigError for a bad setting,
        NotAllowed for a graph.toml server whose host the user has not allowed."""
        env_url = environ.get(ENV_URL, "").strip()
        url = env_url or (configured or "").strip()
        raw_mode = environ.get(ENV_MODE, "").strip().lower() or Mode.READ_WRITE.value
        if raw_mode not in MODES:
            raise ConfigError(f"{ENV_MODE}={short(raw_mode)}: expected one of "
                              f"{', '.join(MODES)}")
        mode = Mode(raw_mode)
        if not url or mode is Mode.OFF:
            return None
        origin = Origin.ENVIRONMENT if env_url else Origin.GRAPH
        problem = url_problem(url, origin.value)
        if problem:
            raise ConfigError(problem)
        if origin is Origin.GRAPH:
            _check_allowed(environ, url)
        key = signing_key(environ)
        token = environ.get(ENV_TOKEN, "").strip() or None
        if token is not None and not TOKEN.fullmatch(token):
            raise ConfigError(f"{ENV_TOKEN} holds a character a bearer token cannot have "
                              "(spaces, control characters, non-ASCII)")
        return cls(url=url.rstrip("/"), key=key, mode=mode, timeout=_timeout(environ),
                   origin=origin, token=token if origin is Origin.ENVIRONMENT else None,
                   token_withheld=token is not None and origin is Origin.GRAPH)


def _check_allowed(environ, url: str) -> None:
    allowed, path = allowed_hosts(environ)
    if _allows(allowed, url):
        return
    host = host_of(url)
    where = f", or add the line {host} to {path}" if path is not None else ""
    raise NotAllowed(f"graph.toml names the server {redact(url)}, which you have not "
                     f"allowed; to use it, set {ENV_HOSTS}={host}{where}; this run goes on "
                     "locally")


def _timeout(environ) -> float:
    raw = environ.get(ENV_TIMEOUT, "").strip() or str(TIMEOUT)
    try:
        timeout = float(raw)
        if not 0 < timeout <= 60:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{ENV_TIMEOUT}={short(raw)}: expected seconds, more than 0 and "
                          "at most 60") from None
    return timeout


def secrets_in(environ) -> list[str]:
    """What no line may show: the token, the key, the URL's password."""
    found = [environ.get(ENV_TOKEN, "").strip(), environ.get(ENV_KEY, "")]
    try:
        found.append(urlsplit(environ.get(ENV_URL, "").strip()).password or "")
    except ValueError:
        pass
    # a shorter one would garble words it happens to be part of; a URL's user:password@
    # goes by its place (scrub), whatever its length
    return [s for s in found if len(s) >= 6]

