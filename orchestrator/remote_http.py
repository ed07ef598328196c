"""The shared result cache on a server: Bazel's HTTP remote cache protocol, the client.

    ORCHESTRATOR_REMOTE_CACHE=https://cache.example.org/tinytorch   (else [project] remote_cache)
    ORCHESTRATOR_CACHE_KEY=...            HMAC-SHA256 key; without it nothing remote is trusted
    ORCHESTRATOR_REMOTE_CACHE_TOKEN=...   optional: sent as `Authorization: Bearer ...`
    ORCHESTRATOR_REMOTE_CACHE_MODE=read-write | read-only | off   (default: read-write)
    ORCHESTRATOR_REMOTE_CACHE_TIMEOUT=2   seconds a request may take

The server is anything that speaks Bazel's HTTP cache (GET and PUT of /ac/<sha256> and
/cas/<sha256>): nginx with WebDAV PUT, bazel-remote, BuildBuddy. What an entry is there
and how it is verified (signed envelope under /ac/, result blob under /cas/) is
remote_entry.py; this module fetches and uploads entries.

Trust: a run uses a fetched entry only once remote_entry has verified it and its observed
inputs, valued here and now, give its key (the same test as a local hit). Anything else is
rejected in one line and the module runs. A run without the key trusts nothing remote and
uploads nothing; read-only mode (a run that has the key, e.g. to check a pull request)
never uploads.

Never slower, never failing: every request has a short timeout and a size cap; the first
failure of the server (refused, timed out, 5xx, not a cache answer) is said in one line
and the rest of the run asks it nothing more; the first local miss fetches every module's
entry at once in background threads, so a chain of cached targets does not wait on one
round trip after another.
"""
from __future__ import annotations

import importlib.util
import json
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from . import keys
from .digests import MISSING
from .graph import ModuleGraph
from .remote_entry import (MAX_CAS_BYTES, Rejected, Unavailable, ac_address,
                           action_result, check_envelope, make_envelope, parse_ac,
                           read_result)
from .store import Result

ENV_URL = "ORCHESTRATOR_REMOTE_CACHE"
ENV_KEY = "ORCHESTRATOR_CACHE_KEY"
ENV_TOKEN = "ORCHESTRATOR_REMOTE_CACHE_TOKEN"
ENV_MODE = "ORCHESTRATOR_REMOTE_CACHE_MODE"
ENV_TIMEOUT = "ORCHESTRATOR_REMOTE_CACHE_TIMEOUT"
MODES = ("read-write", "read-only", "off")
TIMEOUT = 2.0                 # seconds: connect, and each read or write
MIN_KEY_CHARS = 16
MAX_AC_BYTES = 64 << 10       # an envelope is ~400 bytes
PREFETCH_THREADS = 8


class ConfigError(ValueError):
    """A bad remote cache setting, as one printable line."""


# --- settings ---------------------------------------------------------------------------

def url_problem(url: str, where: str, credentials: bool = True) -> str:
    """'' if `url` can be a cache's base URL, else why not (graph.toml passes
    credentials=False: a secret has no place in a committed file)."""
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError as e:
        return f"{where}: not a URL ({e})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{where}: expected http://host/prefix or https://host/prefix, not '{url}'"
    if parts.query or parts.fragment:
        return f"{where}: a cache URL has no ?query or #fragment"
    if not credentials and (parts.username or parts.password):
        return (f"{where}: no user or password in the URL of a committed file "
                f"(use {ENV_URL} or {ENV_TOKEN})")
    return ""


def redact(url: str) -> str:
    """The URL without user and password, for messages."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class Settings:
    url: str                    # the base URL, without a trailing slash
    key: bytes | None           # the HMAC key; None: nothing remote can be trusted
    token: str | None
    mode: str                   # read-write | read-only | off
    timeout: float

    @property
    def readable(self) -> bool:
        return self.mode != "off" and self.key is not None

    @property
    def writable(self) -> bool:
        return self.mode == "read-write" and self.key is not None

    @classmethod
    def from_environment(cls, environ, configured: str = "") -> "Settings | None":
        """None when no cache is configured or mode is off; ConfigError for a bad setting."""
        url = environ.get(ENV_URL, "").strip() or (configured or "").strip()
        mode = environ.get(ENV_MODE, "").strip().lower() or "read-write"
        if mode not in MODES:
            raise ConfigError(f"{ENV_MODE}={mode}: expected one of {', '.join(MODES)}")
        if not url or mode == "off":
            return None
        where = ENV_URL if environ.get(ENV_URL, "").strip() else "graph.toml [project] remote_cache"
        problem = url_problem(url, where)
        if problem:
            raise ConfigError(problem)
        secret = environ.get(ENV_KEY, "")
        if secret and len(secret) < MIN_KEY_CHARS:
            raise ConfigError(f"{ENV_KEY} is shorter than {MIN_KEY_CHARS} characters; use a "
                              "random secret, e.g. `openssl rand -hex 32`")
        raw_timeout = environ.get(ENV_TIMEOUT, "").strip() or str(TIMEOUT)
        try:
            timeout = float(raw_timeout)
            if not 0 < timeout <= 60:
                raise ValueError
        except ValueError:
            raise ConfigError(f"{ENV_TIMEOUT}={raw_timeout}: expected seconds, "
                              "more than 0 and at most 60") from None
        return cls(url=url.rstrip("/"), key=secret.encode() if secret else None,
                   token=environ.get(ENV_TOKEN, "").strip() or None, mode=mode,
                   timeout=timeout)


# --- the client -------------------------------------------------------------------------

class RemoteCache:
    """One run's use of the server. Thread-safe: doit checks targets in its main thread,
    runs them in worker threads, and the prefetch has threads of its own."""

    def __init__(self, settings: Settings, graph: ModuleGraph, pytest_args=(),
                 say=None):
        self.settings, self.graph = settings, graph
        self.pytest_args = list(pytest_args)
        self.say = say if say is not None else _stderr
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
        self.counts = {"hits": 0, "misses": 0, "rejected": 0, "uploaded": 0}

    @classmethod
    def from_environment(cls, graph: ModuleGraph, pytest_args=(), environ=None,
                         say=None) -> "RemoteCache | None":
        """The run's remote cache, or None (not configured, off, or unusable: said in one
        line; a setting of the remote cache never fails a run)."""
        say = say if say is not None else _stderr
        environ = os.environ if environ is None else environ
        try:
            settings = Settings.from_environment(environ, getattr(graph, "remote_cache", ""))
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
        return cls(settings, graph, pytest_args, say)

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
                self._httpx = httpx
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.settings.timeout), headers=headers,
                    follow_redirects=False,
                    limits=httpx.Limits(max_connections=PREFETCH_THREADS + 4))
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
        now = None if result is None else \
            {**declared, **keys.current(self.graph, result.observed)}
        if now is None or keys.digest(now) != result.key:
            self.counts["misses"] += 1
            return None
        self.counts["hits"] += 1
        return result

    def upload(self, result: Result, declared: dict[str, str]) -> None:
        """Share a pass this run executed (never a failure, never in read-only mode)."""
        if not (self.settings.writable and result.passed) or self._down or self._no_uploads:
            return
        try:
            blob = result.to_json().encode("utf-8")
            if len(blob) > MAX_CAS_BYTES:
                return
            envelope = make_envelope(self.settings.key, result, keys.digest(declared), blob)
            body = action_result(json.dumps(envelope, sort_keys=True).encode())
            self._put("cas", envelope["cas"], blob)        # the blob first: an /ac/ entry
            self._put("ac", ac_address(result.module, envelope["declared"]), body)  # never dangles
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
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._client is not None:
            self._client.close()

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
        try:
            return future.result(timeout=4 * self.settings.timeout + 1)
        except FutureTimeout:
            raise Unavailable(f"no answer within {self.settings.timeout:g}s") from None

    def _fetch(self, module_id: str, declared_digest: str) -> Result | None:
        if self._down:
            return None
        data = self._get("ac", ac_address(module_id, declared_digest), MAX_AC_BYTES)
        if data is None:
            return None
        envelope = parse_ac(data)
        check_envelope(envelope, self.settings.key, module_id, declared_digest)
        blob = self._get("cas", envelope["cas"], envelope["size"])
        if blob is None:          # evicted by the server (bazel-remote keeps a bounded size)
            return None
        return read_result(blob, envelope)

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
        slower than the timeout or with another status; Rejected if the body is too large."""
        client, timeout = self.client, self.settings.timeout
        httpx, deadline = self._httpx, time.monotonic() + 2 * timeout
        try:
            with client.stream("GET", self._url(kind, address)) as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise Unavailable(f"GET /{kind}/ answered HTTP {response.status_code}")
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > limit:
                    raise Rejected(f"it is larger than {limit} bytes")
                data = bytearray()
                for chunk in response.iter_raw():
                    data += chunk
                    if len(data) > limit:
                        raise Rejected(f"it is larger than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise Unavailable(f"no answer within {2 * timeout:g}s")
                return bytes(data)
        except httpx.TimeoutException:
            raise Unavailable(f"no answer within {timeout:g}s") from None
        except httpx.HTTPError as e:
            raise Unavailable(_describe(e)) from None

    def _put(self, kind: str, address: str, body: bytes) -> None:
        client = self.client
        httpx = self._httpx
        try:
            response = client.put(self._url(kind, address), content=body,
                                       headers={"Content-Type": "application/octet-stream"})
        except httpx.TimeoutException:
            raise Unavailable(f"no answer within {self.settings.timeout:g}s") from None
        except httpx.HTTPError as e:
            raise Unavailable(_describe(e)) from None
        if response.status_code >= 500:
            raise Unavailable(f"PUT /{kind}/ answered HTTP {response.status_code}")
        if not 200 <= response.status_code < 300:
            raise Rejected(f"upload refused: PUT /{kind}/ answered HTTP {response.status_code}")

    def _trip(self, why: str) -> None:
        """The circuit breaker: the first failure is said once, and nothing more is asked."""
        with self._lock:
            first, self._down = not self._down, self._down or why
        if first:
            self.say(f"warning: remote cache {self.name} not used: {why}; "
                     "this run goes on locally")


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
    print(line, file=sys.stderr, flush=True)


def _describe(error) -> str:
    """'connection refused', 'name or service not known': the OS's words where there are."""
    seen = error
    for _ in range(8):           # the chain httpx -> httpcore -> OSError
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror[0].lower() + seen.strerror[1:]
        seen = seen.__cause__ or seen.__context__
    return f"{type(error).__name__}: {error}"
