"""The shared result cache on a server: Bazel's HTTP remote cache protocol, the client.

    ORCHESTRATOR_REMOTE_CACHE=https://cache.example.org/tinytorch   the server (the user's)
    ORCHESTRATOR_REMOTE_CACHE_HOSTS=cache.example.org,other:8080    hosts graph.toml may name
    ORCHESTRATOR_CACHE_KEY=...            HMAC-SHA256 key; without it nothing remote is trusted
    ORCHESTRATOR_REMOTE_CACHE_TOKEN=...   optional: `Authorization: Bearer ...`, sent only to
                                          the server ORCHESTRATOR_REMOTE_CACHE names
    ORCHESTRATOR_REMOTE_CACHE_MODE=read-write | read-only | off   (default: read-write)
    ORCHESTRATOR_REMOTE_CACHE_TIMEOUT=2   seconds a request may take, start to end

The server is anything that speaks Bazel's HTTP cache (GET and PUT of /ac/<sha256> and
/cas/<sha256>): nginx with WebDAV PUT, bazel-remote, BuildBuddy. What an entry is there
and how it is verified (signed envelope under /ac/, result blob under /cas/) is
remote_entry.py; this module fetches and uploads entries.

Whose server: the user's. A URL in graph.toml (`[project] remote_cache`, which any pull
request can change) is used only if the user allows its host (ORCHESTRATOR_REMOTE_CACHE_HOSTS
or $XDG_CONFIG_HOME/orchestrator/remote-cache-hosts, one host a line); if not, one line
says so and how to allow it, and the run goes on locally. The token and the URL's
credentials go only to the server the user named with them, never through a redirect
(none is followed). A run that uses a server names it first (`announce`).

Trust: a run uses a fetched entry only once remote_entry has verified it and its observed
inputs, valued here and now, give its key (the same test as a local hit). Anything else is
rejected in one line and the module runs. A run without the key trusts nothing remote and
uploads nothing; read-only mode (a run that has the key, e.g. to check a pull request)
never uploads. An upload is what remote_entry.shareable makes of a result: no private path.

Bounded: every request has one deadline (the timeout, from its first byte sent to its last
byte read, enforced on each socket operation, so a server dripping a byte a second is cut
at the deadline) and a size cap on what is read (the answer to a PUT too); bodies are read
raw (Accept-Encoding: identity; an answer with another Content-Encoding is refused, never
decompressed). The first failure of the server (refused, past the deadline, 5xx, a
redirect, too much, not a cache) is said in one line and the rest of the run asks it
nothing more: a slow or flooding server costs one deadline. One bad entry (truncated,
unsigned, too large) costs only its module: one line, it runs, and its upload replaces
the entry. The first local miss fetches every module's entry at once in background
threads, so a chain of cached targets does not wait on one round trip after another.
"""
from __future__ import annotations

import importlib.util
import os
import queue
import re
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.cache import keys
from orchestrator.core import urls
from orchestrator.core.digests import MISSING
from orchestrator.core.graph import ModuleGraph
from orchestrator.cache.remote_entry import (
    ENV_KEY,
    MAX_AC_BYTES,
    MIN_KEY_CHARS,
    ConfigError,
    NotShareable,
    Rejected,
    Trust,
    Unavailable,
    ac_address,
    make_entry,
    signing_key,
    verify,
)
from orchestrator.cache.store import Result

ENV_URL = "ORCHESTRATOR_REMOTE_CACHE"
ENV_HOSTS = "ORCHESTRATOR_REMOTE_CACHE_HOSTS"
ENV_TOKEN = "ORCHESTRATOR_REMOTE_CACHE_TOKEN"
ENV_MODE = "ORCHESTRATOR_REMOTE_CACHE_MODE"
ENV_TIMEOUT = "ORCHESTRATOR_REMOTE_CACHE_TIMEOUT"
CREDENTIALS_INSTEAD = f"use {ENV_URL} or {ENV_TOKEN}"
HOSTS_FILE = "orchestrator/remote-cache-hosts"      # under $XDG_CONFIG_HOME (~/.config)
TIMEOUT = 2.0                 # seconds: one request, start to end
MAX_ANSWER_BYTES = 64 << 10   # what an upload's answer may hold (nginx: nothing)
MAX_HOSTS_FILE_BYTES = 64 << 10
PREFETCH_THREADS = 8
WRITE_PIECE = 16 << 10        # a body goes out in pieces, each within the deadline
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


# --- settings ---------------------------------------------------------------------------

def url_problem(url: str, where: str, credentials: bool = True) -> str:
    """urls.url_problem, saying where credentials go instead."""
    return urls.url_problem(url, where, credentials, instead=CREDENTIALS_INSTEAD)


redact, scrub = urls.redact, urls.scrub


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
    def from_environment(cls, environ, configured: str = "") -> "Settings | None":
        """None when no cache is configured or mode is off; ConfigError for a bad setting,
        NotAllowed for a graph.toml server whose host the user has not allowed."""
        env_url = environ.get(ENV_URL, "").strip()
        url = env_url or (configured or "").strip()
        raw_mode = environ.get(ENV_MODE, "").strip().lower() or Mode.READ_WRITE.value
        if raw_mode not in MODES:
            raise ConfigError(f"{ENV_MODE}={_short(raw_mode)}: expected one of "
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
        raise ConfigError(f"{ENV_TIMEOUT}={_short(raw)}: expected seconds, more than 0 and "
                          "at most 60") from None
    return timeout


def _secrets(environ) -> list[str]:
    """What no line may show: the token, the key, the URL's password."""
    found = [environ.get(ENV_TOKEN, "").strip(), environ.get(ENV_KEY, "")]
    try:
        found.append(urlsplit(environ.get(ENV_URL, "").strip()).password or "")
    except ValueError:
        pass
    # a shorter one would garble words it happens to be part of; a URL's user:password@
    # goes by its place (scrub), whatever its length
    return [s for s in found if len(s) >= 6]


# --- one deadline per request, on every socket operation ---------------------------------

class _Deadline(threading.local):
    at: float | None = None        # time.monotonic() by which this thread's request ends


DEADLINE = _Deadline()


@contextmanager
def deadline(seconds: float):
    """Everything this thread sends or reads inside ends by `seconds` from now (an outer
    deadline, if earlier, still holds)."""
    outer = DEADLINE.at
    mine = time.monotonic() + seconds
    DEADLINE.at = mine if outer is None else min(outer, mine)
    try:
        yield
    finally:
        DEADLINE.at = outer


def _left(timeout: float | None, error: type) -> float | None:
    """The time a socket operation may take: httpcore's per-operation timeout, cut to what
    is left of the request's deadline; `error` (an httpcore timeout) once it has passed."""
    at = DEADLINE.at
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _BoundedStream:
    """An httpcore network stream whose every read and write ends by the deadline. httpx's
    own timeouts are per operation: a server sending a byte a second never trips them."""

    def __init__(self, stream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore
        for at in range(0, len(buffer), WRITE_PIECE):     # a slow reader: checked per piece
            self._stream.write(buffer[at:at + WRITE_PIECE],
                               _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        import httpcore
        return _BoundedStream(self._stream.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _BoundedBackend:
    """httpcore's network backend, its streams bounded (see _BoundedStream)."""

    def __init__(self, backend):
        self._backend = backend

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        import httpcore
        return _BoundedStream(self._backend.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address,
            socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        import httpcore
        return _BoundedStream(self._backend.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _bounded_transport(httpx, limits):
    """httpx's transport, its connections made through _BoundedBackend. httpx has no public
    way to pass httpcore a network backend: this sets the one attribute its transport keeps
    it in, and refuses (Unavailable) an httpx where it is not, rather than run unbounded."""
    transport = httpx.HTTPTransport(limits=limits, retries=0)
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        raise Unavailable(f"httpx {getattr(httpx, '__version__', '?')} cannot bound a "
                          "request's time (no httpcore network backend found)")
    pool._network_backend = _BoundedBackend(backend)
    return transport


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes | None = b""     # None: more than the cap
    location: str = ""           # a redirect's target

    @property
    def redirect(self) -> bool:
        return 300 <= self.status < 400


# --- the client -------------------------------------------------------------------------

class RemoteCache:
    """One run's use of the server. Thread-safe: doit checks targets in its main thread,
    runs them in worker threads, and the prefetch has threads of its own."""

    def __init__(self, settings: Settings, graph: ModuleGraph, pytest_args=(),
                 say=None, secrets=()):
        self.settings, self.graph = settings, graph
        self.pytest_args = list(pytest_args)
        self.say = _Scrubbed(say if say is not None else _stderr, secrets)
        self.name = redact(settings.url)
        self._client = None        # made on the first request: a run of local hits
        self._httpx = None         # never imports httpx (~0.1 s)
        self._lock = threading.Lock()
        self._fetches: dict[tuple[str, str], Future] = {}
        self._down = ""            # why the server is not used any more this run
        self._no_uploads = ""      # why uploads stopped (reads may go on)
        self._prefetch: queue.Queue | None = None
        self._threads: list[threading.Thread] = []
        self._asked: set[str] = set()     # modules a lookup asked for: no prefetch needed
        self.counts = {"hits": 0, "misses": 0, "rejected": 0, "uploaded": 0, "kept": 0}

    @classmethod
    def from_environment(cls, graph: ModuleGraph, pytest_args=(), environ=None,
                         say=None) -> "RemoteCache | None":
        """The run's remote cache, or None (not configured, off, not allowed, or unusable:
        said in one line; a setting of the remote cache never fails a run)."""
        environ = os.environ if environ is None else environ
        secrets = _secrets(environ)
        say = _Scrubbed(say if say is not None else _stderr, secrets)
        try:
            settings = Settings.from_environment(environ, getattr(graph, "remote_cache", ""))
        except NotAllowed as e:
            say(f"note: remote cache not used: {e}")
            return None
        except ConfigError as e:
            say(f"warning: remote cache not used: {e}")
            return None
        if settings is None:
            return None
        if not settings.readable:
            say(f"note: remote cache {redact(settings.url)} not used: {ENV_KEY} is not set, "
                "so its entries cannot be verified")
            return None
        if importlib.util.find_spec("httpx") is None:
            say("warning: remote cache not used: the httpx package is not installed")
            return None
        return cls(settings, graph, pytest_args, say.say, secrets)

    def announce(self) -> None:
        """The run's first line: which server it uses, and how."""
        note = f"; {ENV_TOKEN} not sent: it goes only to the server {ENV_URL} names" \
            if self.settings.token_withheld else ""
        self.say(f"remote cache: {self.name} ({self.settings.mode.value}{note})")

    @property
    def usable(self) -> bool:
        return not self._down

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                httpx = _import_httpx()
                headers = {"Accept-Encoding": "identity",
                           "User-Agent": "orchestrator-remote-cache"}
                if self.settings.token:
                    headers["Authorization"] = f"Bearer {self.settings.token}"
                limits = httpx.Limits(max_connections=PREFETCH_THREADS + 4)
                self._client = httpx.Client(
                    transport=_bounded_transport(httpx, limits), headers=headers,
                    timeout=httpx.Timeout(self.settings.timeout), follow_redirects=False,
                    trust_env=False)
                self._httpx = httpx
            return self._client

    # --- what tasks.py calls ---------------------------------------------------------------
    def lookup(self, module_id: str, declared: dict[str, str]) -> Result | None:
        """The module's pass from the server, verified, whose inputs (declared, and observed
        valued now) give its key; None for a miss, a rejected entry or a server in trouble."""
        if self._down:
            return None
        try:
            with self._lock:
                self._asked.add(module_id)
            self._start_prefetch()
            result = self._entry(module_id, keys.digest(declared))
        except Rejected as e:
            self.counts["rejected"] += 1
            self.say(f"warning: remote cache: {module_id} entry rejected: {e}; it runs here")
            return None
        except Unavailable as e:
            self._trip(str(e))
            return None
        except Exception as e:       # a bug here must never fail a run
            self._trip(f"{type(e).__name__}: {e}")
            return None
        if result is None or not keys.is_hit(self.graph, declared, result):
            self.counts["misses"] += 1
            return None
        self.counts["hits"] += 1
        return result

    def upload(self, result: Result, declared: dict[str, str]) -> None:
        """Share a pass this run executed (never a failure, never in read-only mode, never
        a result that names a private path)."""
        if not (self.settings.writable and result.reusable) or self._down or self._no_uploads:
            return
        try:
            entry = make_entry(self.settings.key, result, keys.digest(declared),
                               self.graph.root)
        except NotShareable as e:
            self.counts["kept"] += 1
            self.say(f"warning: remote cache: {result.module} not uploaded: {e}")
            return
        try:
            self.client                   # made outside the deadline: an import is not
            with deadline(self.settings.timeout):         # the server's time
                self._put("cas", entry.cas, entry.blob)   # the blob first: an /ac/ entry
                self._put("ac", entry.ac, entry.ac_body)  # never dangles
            self.counts["uploaded"] += 1
        except Rejected as e:
            with self._lock:
                first, self._no_uploads = not self._no_uploads, str(e)
            if first:
                self.say(f"warning: remote cache {self.name}: {e}; this run uploads nothing more")
        except Unavailable as e:
            self._trip(str(e))
        except Exception as e:
            self._trip(f"{type(e).__name__}: {e}")

    def close(self, wait: float = 0.0) -> None:
        """End of the run: ask nothing more. The prefetch threads are daemons, so a run
        never waits for a slow server; `wait` seconds lets them finish first (tests)."""
        with self._lock:
            self._down = self._down or "closed"
        self.settle(wait)
        if self._client is not None:
            self._client.close()

    def settle(self, wait: float) -> None:
        """Wait up to `wait` seconds for the prefetch threads to end."""
        end = time.monotonic() + wait
        for thread in list(self._threads):
            thread.join(max(0.0, end - time.monotonic()))

    # --- fetching --------------------------------------------------------------------------
    def _entry(self, module_id: str, declared_digest: str) -> Result | None:
        """The verified entry at this address, fetched once per run (by whichever thread
        asks first: a prefetch thread or the lookup)."""
        with self._lock:
            future = self._fetches.get((module_id, declared_digest))
            mine = future is None
            if mine:
                future = self._fetches[(module_id, declared_digest)] = Future()
        if mine:
            try:
                future.set_result(self._fetch(module_id, declared_digest))
            except BaseException as e:
                future.set_exception(e)
        try:       # another thread's fetch ends by its own deadline; a second is slack
            return future.result(timeout=self.settings.timeout + 1)
        except FutureTimeout:
            raise Unavailable(f"no complete answer within {self.settings.timeout:g}s") from None

    def _fetch(self, module_id: str, declared_digest: str) -> Result | None:
        if self._down:
            return None
        self.client                  # made outside the deadline
        with deadline(self.settings.timeout):      # one deadline for /ac/ and /cas/ both
            body = self._get("ac", ac_address(module_id, declared_digest), MAX_AC_BYTES)
            if body is None:
                return None
            return verify(body, lambda cas, size: self._get("cas", cas, size),
                          self.settings.key, module_id, declared_digest, Trust.SIGNED)

    def _start_prefetch(self) -> None:
        """On the first lookup: fetch every module's entry in the background, addressed by
        the declared inputs its lookup is expected to have (_expected_declared). One
        thread computes those addresses in curriculum order (CPU: more threads would only
        slow the run's own thread down, they share the GIL) and hands them to the fetching
        threads (network: they wait in parallel). A lookup whose inputs turn out otherwise
        fetches its own."""
        with self._lock:
            if self._prefetch is not None or self._down:
                return
            self._prefetch = jobs = queue.Queue()
        # daemon threads: a run that ends never waits for a slow server
        workers = [threading.Thread(target=self._plan, args=(jobs,), daemon=True,
                                    name="remote-cache-plan")]
        workers += [threading.Thread(target=self._fetcher, args=(jobs,), daemon=True,
                                     name="remote-cache-fetch") for _ in range(PREFETCH_THREADS)]
        self._threads.extend(workers)
        for thread in workers:
            thread.start()

    def _plan(self, jobs: queue.Queue) -> None:
        try:
            for module in self.graph:
                if self._down:
                    break
                with self._lock:
                    asked = module.id in self._asked
                if not asked:
                    jobs.put((module.id, keys.digest(self._expected_declared(module))))
        except Exception:
            pass        # a prefetch only saves time; each lookup still fetches its own
        finally:
            for _ in range(PREFETCH_THREADS):
                jobs.put(None)

    def _fetcher(self, jobs: queue.Queue) -> None:
        while (job := jobs.get()) is not None:
            if self._down:
                continue
            try:
                self._entry(*job)
            except Unavailable as e:
                self._trip(str(e))
            except Exception:
                pass    # rejected entries are said by the lookup that asks for them

    def _expected_declared(self, module) -> dict[str, str]:
        """The declared inputs the module's lookup will have: as they are, if its closure is
        exported (stat-cached digests, the cheap case); else as the export will make them."""
        declared = keys.declared(self.graph, module, self.pytest_args)
        if any(name.startswith("export:") and value == MISSING
               for name, value in declared.items()):
            declared = keys.declared(self.graph, module, self.pytest_args, prospective=True)
        return declared

    # --- HTTP ------------------------------------------------------------------------------
    def _url(self, kind: str, address: str) -> str:
        return f"{self.settings.url}/{kind}/{address}"

    def _get(self, kind: str, address: str, limit: int) -> bytes | None:
        """The body at /kind/address (None: 404); Unavailable if the server fails, answers
        past the deadline or with another status; Rejected if the body is over `limit`."""
        answer = self._exchange("GET", kind, address, limit)
        if answer.status == 404:
            return None
        if answer.redirect:
            raise Unavailable(f"GET /{kind}/ answered HTTP {answer.status}, a redirect"
                              f"{_to(answer.location)}, which is not followed")
        if answer.status != 200:
            raise Unavailable(f"GET /{kind}/ answered HTTP {answer.status}")
        if answer.body is None:
            raise Rejected(f"it is larger than {limit} bytes")
        return answer.body

    def _put(self, kind: str, address: str, body: bytes) -> None:
        answer = self._exchange("PUT", kind, address, MAX_ANSWER_BYTES, body)
        if answer.status >= 500:
            raise Unavailable(f"PUT /{kind}/ answered HTTP {answer.status}")
        if answer.redirect:
            raise Rejected(f"upload refused: PUT /{kind}/ answered HTTP {answer.status}, a "
                           f"redirect{_to(answer.location)}, which is not followed")
        if not 200 <= answer.status < 300:
            raise Rejected(f"upload refused: PUT /{kind}/ answered HTTP {answer.status}")
        if answer.body is None:
            raise Unavailable(f"it answered an upload with more than {MAX_ANSWER_BYTES} bytes")

    def _exchange(self, method: str, kind: str, address: str, limit: int,
                  body: bytes | None = None) -> Answer:
        """One request within the deadline: the status, and the raw body of a success (at
        most `limit` bytes read; None if there is more). Unavailable for a transport
        failure, a compressed answer or an HTML page where a cache entry belongs."""
        client, httpx = self.client, self._httpx
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        try:
            with client.stream(method, self._url(kind, address), content=body,
                               headers=headers) as response:
                status, fields = response.status_code, response.headers
                encoding = fields.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise Unavailable(f"{method} /{kind}/ answered with Content-Encoding "
                                      f"{_short(encoding)}, not identity as asked")
                if 300 <= status < 400:
                    return Answer(status, location=fields.get("location", ""))
                if not (status == 200 or (method == "PUT" and 200 <= status < 300)):
                    return Answer(status)           # its body is not read at all
                if method == "GET" and "text/html" in fields.get("content-type", "").lower():
                    raise Unavailable(f"it answered a GET of /{kind}/ with an HTML page, "
                                      "not a cache entry")
                return Answer(status, _read(response, limit, self.settings.timeout))
        except httpx.TimeoutException:
            raise Unavailable(f"no complete answer within {self.settings.timeout:g}s") from None
        except httpx.HTTPError as e:
            raise Unavailable(_describe(e)) from None

    def _trip(self, why: str) -> None:
        """The circuit breaker: the first failure is said once, and nothing more is asked."""
        with self._lock:
            first, self._down = not self._down, self._down or why
        if first:
            self.say(f"warning: remote cache {self.name} not used: {why}; "
                     "this run goes on locally")


def _read(response, limit: int, timeout: float) -> bytes | None:
    """At most `limit` bytes of the raw (never decompressed) body, None if there are more;
    Unavailable past the deadline (the transport cuts a silent server at it too)."""
    length = response.headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > limit:
        return None
    data = bytearray()
    for chunk in response.iter_raw():
        data += chunk
        if len(data) > limit:
            return None
        if DEADLINE.at is not None and time.monotonic() > DEADLINE.at:
            raise Unavailable(f"no complete answer within {timeout:g}s")
    return bytes(data)


class _Scrubbed:
    """A `say` whose lines never show a credential (scrub)."""

    def __init__(self, say, secrets=()):
        self.say = say.say if isinstance(say, _Scrubbed) else say
        self.secrets = list(secrets)

    def __call__(self, line: str) -> None:
        self.say(scrub(line, self.secrets))


def _to(location: str) -> str:
    return f" to {_short(redact(location))}" if location else ""


def _short(text: str, limit: int = 80) -> str:
    """Server- or user-given text as it may go in a line: printable, and short."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _import_httpx():
    """httpx, without its command-line tool: httpx imports that (and with it rich and
    click, ~50 ms) when they are installed, and a cached run waits for the import."""
    blocked = "httpx._main" not in sys.modules
    if blocked:
        sys.modules["httpx._main"] = None        # its `from ._main import main` -> a stub
    try:
        import httpx
    finally:
        if blocked and sys.modules.get("httpx._main", 0) is None:
            del sys.modules["httpx._main"]
    return httpx


def _stderr(line: str) -> None:
    # the process's own stderr: doit swaps sys.stderr to capture a task's output while its
    # action runs (where uploads happen), and a line said there would never be seen
    print(line, file=sys.__stderr__ or sys.stderr, flush=True)


def _describe(error) -> str:
    """'connection refused', 'name or service not known': the OS's words where there are."""
    seen = error
    for _ in range(8):           # the chain httpx -> httpcore -> OSError
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror[0].lower() + seen.strerror[1:]
        seen = seen.__cause__ or seen.__context__
    return f"{type(error).__name__}: {_short(str(error))}"
