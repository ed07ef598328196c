"""One entry of the remote cache as it is on the wire, and how a reader verifies it.

Two levels, like Bazel's action cache pointing into its CAS:

    /cas/<sha256 of the result JSON>           the result (store.Result.to_json), self-verifying
    /ac/<sha256(format, module, declared)>     a signed envelope naming that blob

A lookup can only be addressed by what is known before a run: the digest of the declared
inputs (keys.declared). The result's own key also covers the inputs the run observed, so
the caller trusts a fetched result only once its observed inputs, valued here and now, give
its key (the same test as a local hit). The envelope travels as the stdout_raw field of a
protobuf ActionResult, which is what bazel-remote and BuildBuddy check an /ac/ body to be.

Trust: the envelope {format, module, declared, key, cas, size, key_id} is signed with
HMAC-SHA256; an entry is accepted only if the signature checks with the reader's key
(check_envelope), the blob's sha256 is its address, the blob fits the result schema
(Result.from_dict, the one used for local results), and it is a pass of this module whose
key is the digest of its inputs (read_result). Whether those inputs are this checkout's
now is the caller's test (remote_http.RemoteCache.lookup). Anything else is Rejected, with
the reason in one line.
"""
from __future__ import annotations

import hashlib
import hmac
import json

from . import keys
from .store import InvalidResult, Result

MAX_CAS_BYTES = 8 << 20       # a result is kilobytes (one line per test)
FORMAT = "orchestrator-result/1"


# Raised by parse_ac: an /ac/ body that is no entry at all means the server answers something
# else, so the client stops asking it (remote_http.RemoteCache._trip).
class Unavailable(Exception):
    """The server cannot be used for the rest of this run (down, slow, 5xx, not a cache)."""


class Rejected(Exception):
    """An entry that must not be used: the module runs."""


# --- addresses, envelopes and signatures ------------------------------------------------

def ac_address(module_id: str, declared_digest: str) -> str:
    """Where the entry of `module_id` with these declared inputs lives under /ac/."""
    return hashlib.sha256(f"{FORMAT}\0{module_id}\0{declared_digest}".encode()).hexdigest()


def key_id(key: bytes) -> str:
    """A short public name of a key, so a wrongly-keyed entry is told from a tampered one."""
    return hashlib.sha256(b"orchestrator cache key id\0" + key).hexdigest()[:16]


def signature(key: bytes, fields: dict) -> str:
    message = json.dumps({k: v for k, v in fields.items() if k != "signature"},
                         sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def make_envelope(key: bytes, result: Result, declared_digest: str, blob: bytes) -> dict:
    fields = {"format": FORMAT, "module": result.module, "declared": declared_digest,
              "key": result.key, "cas": hashlib.sha256(blob).hexdigest(), "size": len(blob),
              "key_id": key_id(key)}
    return {**fields, "signature": signature(key, fields)}


ENVELOPE_FIELDS = {"format": str, "module": str, "declared": str, "key": str, "cas": str,
                   "size": int, "key_id": str, "signature": str}


def check_envelope(envelope: dict, key: bytes, module_id: str, declared_digest: str) -> None:
    """Rejected unless the envelope is signed with `key` and names this module's entry."""
    if "signature" not in envelope:
        raise Rejected("it is not signed")
    for name, kind in ENVELOPE_FIELDS.items():
        if not isinstance(envelope.get(name), kind) or isinstance(envelope.get(name), bool):
            raise Rejected(f"its envelope field '{name}' is missing or mistyped")
    unknown = sorted(set(envelope) - set(ENVELOPE_FIELDS))
    if unknown:
        raise Rejected(f"its envelope has unknown fields {unknown}")
    if envelope["key_id"] != key_id(key):
        raise Rejected("it is signed with another key")
    if not hmac.compare_digest(envelope["signature"], signature(key, envelope)):
        raise Rejected("its signature does not check: altered after it was signed")
    if envelope["format"] != FORMAT or envelope["module"] != module_id or \
            envelope["declared"] != declared_digest:
        raise Rejected("it is signed for another module or other inputs")
    if not 0 < envelope["size"] <= MAX_CAS_BYTES:
        raise Rejected(f"its result is larger than {MAX_CAS_BYTES} bytes")


def read_result(blob: bytes, envelope: dict) -> Result:
    """The result in a CAS blob, checked against the envelope that named it; or Rejected."""
    if len(blob) != envelope["size"] or hashlib.sha256(blob).hexdigest() != envelope["cas"]:
        raise Rejected("its result does not match its content address (altered on the server)")
    try:
        result = Result.from_dict(json.loads(blob.decode("utf-8")))
    except (ValueError, UnicodeDecodeError) as e:
        why = str(e) if isinstance(e, InvalidResult) else type(e).__name__
        raise Rejected(f"its result does not fit the schema ({why})") from None
    if result.module != envelope["module"] or result.key != envelope["key"]:
        raise Rejected("its result is another module's or has another key")
    if keys.digest(result.inputs) != result.key:
        raise Rejected("its result's inputs do not give its key")
    if not result.passed:
        raise Rejected("it is not a pass")
    return result


# --- the /ac/ body: a protobuf ActionResult whose stdout_raw (field 5) holds the envelope --

def action_result(payload: bytes) -> bytes:
    return b"\x2a" + _varint(len(payload)) + payload


def stdout_raw(data: bytes) -> bytes:
    """The stdout_raw field of a serialized ActionResult; ValueError if it is none. Other
    fields are skipped (bazel-remote adds execution_metadata to what it stores)."""
    found, at = None, 0
    while at < len(data):
        tag, at = _read_varint(data, at)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, at = _read_varint(data, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        elif wire == 2:
            length, at = _read_varint(data, at)
            if at + length > len(data):
                raise ValueError("truncated field")
            if field == 5:
                found = data[at:at + length]
            at += length
        else:
            raise ValueError(f"wire type {wire}")
        if field == 0 or at > len(data):
            raise ValueError("not a protobuf message")
    if found is None:
        raise ValueError("no stdout_raw field")
    return found


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def parse_ac(data: bytes) -> dict:
    """The envelope in an /ac/ body; Unavailable if the body is no cache entry at all (the
    server answers something else: a proxy's page, garbage)."""
    try:
        envelope = json.loads(stdout_raw(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise Unavailable(f"it answered an /ac/ request with something that is not a cache "
                          f"entry ({e})") from None
    if not isinstance(envelope, dict):
        raise Unavailable("it answered an /ac/ request with something that is not a cache entry")
    return envelope
