"""One entry of a shared result cache as it is stored, how it is made, and how a reader
verifies it: the same entry on a server (remote_http.py) and in a directory (remote_cache.py).

Two levels, like Bazel's action cache pointing into its CAS:

    cas/<sha256 of the result JSON>           the result (store.Result.to_json), self-verifying
    ac/<sha256(format, module, declared)>     a signed envelope naming that blob

A lookup can only be addressed by what is known before a run: the digest of the declared
inputs (keys.declared). The result's own key also covers the inputs the run observed, so
the caller trusts a fetched result only once its observed inputs, valued here and now, give
its key (the same test as a local hit). The envelope travels as the stdout_raw field of a
protobuf ActionResult, which is what bazel-remote and BuildBuddy check an /ac/ body to be.

Trust: the envelope {format, module, declared, key, cas, size, key_id} is signed with
HMAC-SHA256 (ORCHESTRATOR_CACHE_KEY); an entry is accepted only if the signature checks
with the reader's key (check_envelope), the blob's sha256 is its address, the blob fits the
result schema (Result.from_dict, the one used for local results), and it is a pass of this
module whose key is the digest of its inputs (read_result). Whether those inputs are this
checkout's now is the caller's test. Anything else is Rejected, with the reason in one line:
one bad entry costs that entry, never the rest of the cache. Trust.UNSIGNED (only `cache
import --allow-unsigned`: the user vouches for the directory) skips the signature, never
the other checks.

Privacy: what is shared is `shareable(result)`: paths inside the project made relative in
every free-text field (log, reason, messages, leftovers), any other absolute path there
dropped; a result that still names the user's home directory or an absolute path outside
the project (its key entries, `inputs`, cannot be rewritten without changing its key) is
NotShareable and stays on this machine.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from orchestrator.cache import keys
from orchestrator.cache.store import InvalidResult, Result

ENV_KEY = "ORCHESTRATOR_CACHE_KEY"
MIN_KEY_CHARS = 16
MAX_CAS_BYTES = 8 << 20       # a result is kilobytes (one line per test)
MAX_AC_BYTES = 64 << 10       # an envelope is ~400 bytes
FORMAT = "orchestrator-result/1"


class ConfigError(ValueError):
    """A bad cache setting, as one printable line (never with a secret in it)."""


# Raised by the transport (remote_http.py): the server is down, slow, or answers something
# that is no cache at all, so the client stops asking it (remote_http.RemoteCache._trip).
class Unavailable(Exception):
    """The server cannot be used for the rest of this run (down, slow, 5xx, not a cache)."""


class Rejected(Exception):
    """An entry that must not be used: the module runs."""


class NotShareable(Exception):
    """A result that must not leave this machine: it names a private path."""


class Trust(Enum):
    SIGNED = "signed"          # an entry counts only if its signature checks with the key
    UNSIGNED = "unsigned"      # the user vouches for the source: no signature needed


def signing_key(environ) -> bytes | None:
    """The HMAC key of the environment (None: unset); ConfigError if it is too short."""
    secret = environ.get(ENV_KEY, "")
    if secret and len(secret) < MIN_KEY_CHARS:
        raise ConfigError(f"{ENV_KEY} is shorter than {MIN_KEY_CHARS} characters; use a "
                          "random secret, e.g. `openssl rand -hex 32`")
    return secret.encode() if secret else None


# --- addresses, envelopes and signatures ------------------------------------------------

def ac_address(module_id: str, declared_digest: str) -> str:
    """Where the entry of `module_id` with these declared inputs lives under /ac/."""
    return hashlib.sha256(f"{FORMAT}\0{module_id}\0{declared_digest}".encode()).hexdigest()


def declared_digest(result: Result) -> str:
    """The digest its lookup is addressed by: of the result's inputs, less the observed."""
    return keys.digest({name: value for name, value in result.inputs.items()
                        if name.partition(":")[0] not in keys.OBSERVED_KINDS})


def key_id(key: bytes) -> str:
    """A short public name of a key, so a wrongly-keyed entry is told from a tampered one."""
    return hashlib.sha256(b"orchestrator cache key id\0" + key).hexdigest()[:16]


def signature(key: bytes, fields: dict) -> str:
    message = json.dumps({k: v for k, v in fields.items() if k != "signature"},
                         sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def make_envelope(key: bytes | None, result: Result, declared: str, blob: bytes) -> dict:
    """The envelope naming `blob`; signed with `key`, or unsigned without one (only an
    import that trusts its directory takes it)."""
    fields = {"format": FORMAT, "module": result.module, "declared": declared,
              "key": result.key, "cas": hashlib.sha256(blob).hexdigest(), "size": len(blob)}
    if key is None:
        return fields
    fields["key_id"] = key_id(key)
    return {**fields, "signature": signature(key, fields)}


ENVELOPE_FIELDS = {"format": str, "module": str, "declared": str, "key": str, "cas": str,
                   "size": int}
SIGNATURE_FIELDS = {"key_id": str, "signature": str}
ADDRESS = re.compile(r"[0-9a-f]{64}")


def check_envelope(envelope: dict, key: bytes | None, module_id: str, declared: str,
                   trust: Trust = Trust.SIGNED) -> None:
    """Rejected unless the envelope is signed with `key` (Trust.SIGNED) and names this
    module's entry."""
    if trust is Trust.SIGNED and "signature" not in envelope:
        raise Rejected("it is not signed")
    expected = {**ENVELOPE_FIELDS, **SIGNATURE_FIELDS}
    for name, kind in expected.items():
        value = envelope.get(name)
        if name in SIGNATURE_FIELDS and trust is Trust.UNSIGNED and value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise Rejected(f"its envelope field '{name}' is missing or mistyped")
    unknown = sorted(set(envelope) - set(expected))
    if unknown:
        raise Rejected(f"its envelope has unknown fields {unknown[:5]}")
    if trust is Trust.SIGNED:
        if key is None or envelope["key_id"] != key_id(key):
            raise Rejected("it is signed with another key")
        if not hmac.compare_digest(envelope["signature"], signature(key, envelope)):
            raise Rejected("its signature does not check: altered after it was signed")
    if envelope["format"] != FORMAT or envelope["module"] != module_id or \
            envelope["declared"] != declared:
        raise Rejected("it is signed for another module or other inputs")
    if not ADDRESS.fullmatch(envelope["cas"]):      # it names a file or a URL path
        raise Rejected("its envelope names no content address")
    if not 0 < envelope["size"] <= MAX_CAS_BYTES:
        raise Rejected(f"its result is larger than {MAX_CAS_BYTES} bytes")


def read_result(blob: bytes, envelope: dict) -> Result:
    """The result in a CAS blob, checked against the envelope that named it; or Rejected."""
    if len(blob) != envelope["size"] or hashlib.sha256(blob).hexdigest() != envelope["cas"]:
        raise Rejected("its result does not match its content address (altered where it "
                       "was stored)")
    try:
        result = Result.from_dict(json.loads(blob.decode("utf-8")))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        why = str(e) if isinstance(e, InvalidResult) else type(e).__name__
        raise Rejected(f"its result does not fit the schema ({why})") from None
    if result.module != envelope["module"] or result.key != envelope["key"]:
        raise Rejected("its result is another module's or has another key")
    if keys.digest(result.inputs) != result.key:
        raise Rejected("its result's inputs do not give its key")
    if not result.reusable:
        raise Rejected("it is not a reusable pass")
    return result


BlobReader = Callable[[str, int], "bytes | None"]     # (cas address, signed size) -> blob


def verify(ac_body: bytes, blob_at: BlobReader, key: bytes | None, module_id: str,
           declared: str, trust: Trust = Trust.SIGNED) -> Result | None:
    """The result an /ac/ body names, every check of the module docstring passed; None if
    its blob is gone (a server evicts); Rejected for anything else."""
    envelope = parse_ac(ac_body)
    check_envelope(envelope, key, module_id, declared, trust)
    blob = blob_at(envelope["cas"], envelope["size"])
    return None if blob is None else read_result(blob, envelope)


@dataclass(frozen=True)
class Entry:
    """One result as it is shared: an /ac/ body at its address, naming a /cas/ blob."""
    ac: str
    ac_body: bytes
    cas: str
    blob: bytes


def make_entry(key: bytes | None, result: Result, declared: str, root: Path) -> Entry:
    """The entry to share for `result` (NotShareable: it stays here)."""
    blob = shareable(result, root)
    if len(blob) > MAX_CAS_BYTES:
        raise NotShareable(f"its result is larger than {MAX_CAS_BYTES} bytes")
    envelope = make_envelope(key, result, declared, blob)
    body = action_result(json.dumps(envelope, sort_keys=True).encode())
    return Entry(ac_address(result.module, declared), body, envelope["cas"], blob)


# --- privacy: nothing private leaves the machine --------------------------------------------

# An absolute POSIX path of two components at least (/home/alice, /usr/lib/x), not inside a
# relative path (a/b/c), a URL's //host or a fraction (1/2)
ABSOLUTE = re.compile(r"(?<![\w.~/-])(?:/[\w.~+@%=-]+){2,}/?")
FREE_TEXT_EXEMPT = ("inputs", "key", "module")     # keyed, or never a path


def shareable(result: Result, root: Path) -> bytes:
    """The result's JSON as it may leave this machine: project paths made relative and other
    absolute paths dropped in its free-text fields; NotShareable if it still names the
    home directory or an absolute path outside the project (e.g. in `inputs`)."""
    roots = _roots(root)
    data = json.loads(result.to_json())
    for name, value in data.items():
        if name not in FREE_TEXT_EXEMPT:
            data[name] = _walk(value, lambda text: _relative(text, roots))
    problem = private_path(data, roots)
    if problem:
        raise NotShareable(problem)
    return json.dumps(data, indent=1).encode("utf-8")


def private_path(data: dict, roots: list[str]) -> str:
    """'' if nothing in `data` names the home directory or an absolute path outside the
    project, else the first such path and where it is, as one short line."""
    home = _home()
    for where, text in _strings(data, ""):
        found = [m.group() for m in ABSOLUTE.finditer(text) if not _inside(m.group(), roots)]
        if home and not found and re.search(re.escape(home) + r"(?![\w.~+@%=-])", text):
            found = [home]
        if found:
            return (f"its result names {_short(found[0])} (in {where}), a path outside the "
                    "project: results are shared without private paths")
    return ""


def _roots(root: Path) -> list[str]:
    found = {str(root), os.path.realpath(root)}
    return sorted((r.rstrip("/") for r in found if r not in ("", "/")), key=len, reverse=True)


def _home() -> str:
    home = os.path.expanduser("~").rstrip("/")
    return home if home and home != "~" else ""


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots)


def _relative(text: str, roots: list[str]) -> str:
    for root in roots:
        text = re.sub(re.escape(root) + r"(/|(?![\w.~+@%=-]))",
                      lambda m: "" if m.group(1) == "/" else ".", text)
    text = ABSOLUTE.sub("<outside>", text)
    home = _home()
    return re.sub(re.escape(home) + r"(?![\w.~+@%=-])", "~", text) if home else text


def _walk(value, change: Callable[[str], str]):
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_walk(v, change) for v in value]
    if isinstance(value, dict):
        return {change(k): _walk(v, change) for k, v in value.items()}
    return value


def _strings(value, where: str) -> Iterator[tuple[str, str]]:
    """(where, text) for every string of `value`, keys included."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, where)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield where or "its fields", name
            yield from _strings(item, f"{where}[{_short(name, 60)}]" if where else name)


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
    """The envelope in an /ac/ body; Rejected if the body is no entry (truncated, garbage):
    one bad entry is a miss for its module, not a reason to stop asking the server."""
    try:
        envelope = json.loads(stdout_raw(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise Rejected(f"it is not a cache entry ({_short(str(e), 60)})") from None
    if not isinstance(envelope, dict):
        raise Rejected("it is not a cache entry (its envelope is not a JSON object)")
    return envelope
