"""The shared result cache on a server: Bazel's HTTP remote cache protocol, the client.

The server is anything that speaks Bazel's HTTP cache (GET and PUT of /ac/<sha256> and
/cas/<sha256>): nginx with WebDAV PUT, bazel-remote, BuildBuddy. Which server and how (the
environment, the hosts the user allows, the token, the mode) is remote_settings.py; what
an entry is there and how it is verified (signed envelope under /ac/, result blob under
/cas/) is remote_entry.py; how each request is bounded in time and size is
remote_bounds.py. This module is one run's use of the server: it fetches and uploads
entries. The token and the URL's credentials go only to the server the user named with
them, never through a redirect (none is followed). A run that uses a server names it first
(`announce`).

Trust: a run uses a fetched entry only once remote_entry has verified it and its observed
inputs, valued here and now, give its key (the same test as a local hit). Anything else is
rejected in one line and the module runs. A run without the key trusts nothing remote and
uploads nothing; read-only mode (a run that has the key, e.g. to check a pull request)
never uploads. An upload is what remote_entry.shareable makes of a result: no private path.

Failures: bodies are read raw (Accept-Encoding: identity; an answer with another
Content-Encoding is refused, never decompressed). The first failure of the server
(refused, past the deadline, 5xx, a redirect, too much, not a cache) is said in one line
and the rest of the run asks it nothing more (`_trip`, the circuit breaker): a slow or
flooding server costs one deadline. One bad entry (truncated, unsigned, too large) costs
only its module: one line, it runs, and its upload replaces the entry. The first local
miss fetches every module's entry at once in background threads, so a chain of cached
targets does not wait on one round trip after another.
"""
from __future__ import annotations

import importlib.util
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from orchestrator.cache import keys
from orchestrator.cache.remote_bounds import bounded_transport, deadline, read_capped
from orchestrator.cache.remote_entry import (
    ENV_KEY,
    MAX_AC_BYTES,
    ConfigError,
    NotShareable,
    Rejected,
    Trust,
    Unavailable,
    ac_address,
    make_entry,
    verify,
)
from orchestrator.cache.remote_lines import (
    Scrubbed,
    describe,
    redirect_target,
    short,
    to_stderr,
)
from orchestrator.cache.remote_settings import (
    ENV_TOKEN,
    ENV_URL,
    NotAllowed,
    Settings,
    redact,
    secrets_in,
)
from orchestrator.cache.store import Result
from orchestrator.core.digests import MISSING
from orchestrator.core.graph import ModuleGraph

if TYPE_CHECKING:
    import httpx

_Job = tuple[str, str]        # a prefetch: (module id, digest of its declared inputs)

MAX_ANSWER_BYTES = 64 << 10   # what an upload's answer may hold (nginx: nothing)
PREFETCH_THREADS = 8


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
        self.say = Scrubbed(say if say is not None else to_stderr, secrets)
        self.name = redact(settings.url)
        self._client: httpx.Client | None = None   # made on the first request: a run of
        self._httpx: ModuleType | None = None      # local hits never imports httpx (~0.1 s)
        self._lock = threading.Lock()
        self._fetches: dict[_Job, Future[Result | None]] = {}
        self._down = ""            # why the server is not used any more this run
        self._no_uploads = ""      # why uploads stopped (reads may go on)
        self._prefetch: queue.Queue[_Job | None] | None = None
        self._threads: list[threading.Thread] = []
        self._asked: set[str] = set()     # modules a lookup asked for: no prefetch needed
        self.counts = {"hits": 0, "misses": 0, "rejected": 0, "uploaded": 0, "kept": 0}

    @classmethod
    def from_environment(cls, graph: ModuleGraph, pytest_args=(), environ=None,
                         say=None) -> RemoteCache | None:
        """The run's remote cache, or None (not configured, off, not allowed, or unusable:
        said in one line; a setting of the remote cache never fails a run)."""
        environ = os.environ if environ is None else environ
        secrets = secrets_in(environ)
        say = Scrubbed(say if say is not None else to_stderr, secrets)
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
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                httpx = _import_httpx()
                headers = {"Accept-Encoding": "identity",
                           "User-Agent": "orchestrator-remote-cache"}
                if self.settings.token:
                    headers["Authorization"] = f"Bearer {self.settings.token}"
                limits = httpx.Limits(max_connections=PREFETCH_THREADS + 4)
                self._client = httpx.Client(
                    transport=bounded_transport(httpx, limits), headers=headers,
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
            _ = self.client               # made outside the deadline: an import is not
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
            if future is None:
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
        _ = self.client              # made outside the deadline
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
            jobs: queue.Queue[_Job | None] = queue.Queue()
            self._prefetch = jobs
        # daemon threads: a run that ends never waits for a slow server
        workers = [threading.Thread(target=self._plan, args=(jobs,), daemon=True,
                                    name="remote-cache-plan")]
        workers += [threading.Thread(target=self._fetcher, args=(jobs,), daemon=True,
                                     name="remote-cache-fetch") for _ in range(PREFETCH_THREADS)]
        self._threads.extend(workers)
        for thread in workers:
            thread.start()

    def _plan(self, jobs: queue.Queue[_Job | None]) -> None:
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

    def _fetcher(self, jobs: queue.Queue[_Job | None]) -> None:
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
                              f"{redirect_target(answer.location)}, which is not followed")
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
                           f"redirect{redirect_target(answer.location)}, which is not followed")
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
        assert httpx is not None        # imported with the client
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        try:
            with client.stream(method, self._url(kind, address), content=body,
                               headers=headers) as response:
                status, fields = response.status_code, response.headers
                encoding = fields.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise Unavailable(f"{method} /{kind}/ answered with Content-Encoding "
                                      f"{short(encoding)}, not identity as asked")
                if 300 <= status < 400:
                    return Answer(status, location=fields.get("location", ""))
                if not (status == 200 or (method == "PUT" and 200 <= status < 300)):
                    return Answer(status)           # its body is not read at all
                if method == "GET" and "text/html" in fields.get("content-type", "").lower():
                    raise Unavailable(f"it answered a GET of /{kind}/ with an HTML page, "
                                      "not a cache entry")
                return Answer(status, read_capped(response, limit, self.settings.timeout))
        except httpx.TimeoutException:
            raise Unavailable(f"no complete answer within {self.settings.timeout:g}s") from None
        except httpx.HTTPError as e:
            raise Unavailable(describe(e)) from None

    def _trip(self, why: str) -> None:
        """The circuit breaker: the first failure is said once, and nothing more is asked."""
        with self._lock:
            first, self._down = not self._down, self._down or why
        if first:
            self.say(f"warning: remote cache {self.name} not used: {why}; "
                     "this run goes on locally")


def _import_httpx() -> ModuleType:
    """httpx, without its command-line tool: httpx imports that (and with it rich and
    click, ~50 ms) when they are installed, and a cached run waits for the import."""
    blocked = "httpx._main" not in sys.modules
    if blocked:
        # its `from ._main import main` -> a stub; None in sys.modules is how Python
        # blocks an import, which typeshed's dict[str, ModuleType] does not allow for
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        if blocked and sys.modules.get("httpx._main", 0) is None:
            del sys.modules["httpx._main"]
    return httpx

