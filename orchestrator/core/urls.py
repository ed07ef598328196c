"""What a remote cache's URL may be, and text without its secrets: the rules graph.toml's
loader and the HTTP client share (a module of its own, so that validating graph.toml does
not import the client, which builds on the graph)."""
from __future__ import annotations

import re
from urllib.parse import urlsplit


def url_problem(url: str, where: str, credentials: bool = True, instead: str = "") -> str:
    """'' if `url` can be a cache's base URL, else why not (graph.toml passes
    credentials=False: a secret has no place in a committed file; `instead` says where
    it goes). Never quotes the URL: it may hold a password."""
    try:
        parts = urlsplit(url)
        _ = parts.port     # a bad port raises ValueError only when read
    except ValueError as e:
        return f"{where}: not a URL ({scrub(str(e))})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        scheme = parts.scheme if re.fullmatch(r"[a-z][a-z0-9+.-]{0,15}", parts.scheme) else ""
        return (f"{where}: expected http://host/prefix or https://host/prefix"
                + (f", not a {scheme}: URL" if scheme else ""))
    if parts.query or parts.fragment:
        return f"{where}: a cache URL has no ?query or #fragment"
    if not credentials and (parts.username or parts.password):
        return f"{where}: no user or password in the URL of a committed file ({instead})"
    return ""


def redact(url: str) -> str:
    """The URL without user and password, for messages."""
    return scrub(url)


USERINFO = re.compile(r"(?<=//)[^/?#\s]*@")
BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+", re.IGNORECASE)


def scrub(text: str, secrets=()) -> str:
    """`text` without credentials: a URL's user:password@, a Bearer token, and each of
    `secrets` (the token, the key, the URL's password) wherever it appears."""
    text = BEARER.sub(r"\1***", USERINFO.sub("", text))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
