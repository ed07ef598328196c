"""A request to the cache server, bounded in time and size.

Every request has one deadline (the timeout, from its first byte sent to its last byte
read), enforced on each socket operation: httpx's own timeouts are per operation, so a
server dripping a byte a second would never trip them; here it is cut at the deadline.
What is read is capped (the answer to a PUT too) and read raw, never decompressed. A slow
or flooding server costs one deadline at most.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from orchestrator.cache.remote_entry import Unavailable

WRITE_PIECE = 16 << 10        # a body goes out in pieces, each within the deadline


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


def bounded_transport(httpx, limits):
    """httpx's transport, its connections made through _BoundedBackend. httpx has no public
    way to pass httpcore a network backend: this sets the one attribute its transport keeps
    it in, and refuses (Unavailable) an httpx where it is not, rather than run unbounded."""
    transport = httpx.HTTPTransport(limits=limits, retries=0)
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if pool is None or backend is None:
        raise Unavailable(f"httpx {getattr(httpx, '__version__', '?')} cannot bound a "
                          "request's time (no httpcore network backend found)")
    pool._network_backend = _BoundedBackend(backend)
    return transport


def read_capped(response, limit: int, timeout: float) -> bytes | None:
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
