"""The shared cache under attack: a hostile repository, server or directory (the security
review's findings, one test or more each; docs/REMOTE_CACHE.md, "Threat model").

Servers are real, on 127.0.0.1: `hostile` (Python's http.server in a thread) plays what
nginx cannot (dripping, flooding, a gzip bomb, a redirect); the nginx fixture serves real
entries. Time is bounded generously (BOUND, for a deadline of 1 s: a busy 2-core machine
must not fail these) and memory with tracemalloc, far below what the attack would cost.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest

from orchestrator.cache import keys, remote_entry
from orchestrator.cache.remote_http import RemoteCache
from orchestrator.cache.store import Result
from orchestrator.core.graph import load
from tests.orchestrator.conftest import build
from tests.orchestrator.nginx import free_port

# the fixtures are imported for pytest, which finds them by name in this module
from tests.orchestrator.test_remote_cache import (
    KEY,
    OTHER_KEY,
    Said,
    Wired,
    cache,
    closed,  # noqa: F401 (an autouse fixture)
    loopback_server,  # noqa: F401 (the fixture `loopback`)
    minicalc,
    nginx_server,  # noqa: F401 (the fixture `nginx`)
    passing,
    portable_keys,  # noqa: F401 (an autouse fixture)
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="FIFOs, /dev/zero, RLIMIT_AS")

TOKEN = "t0ken-for-tests-0123456789"
BOUND = 20          # seconds, for a deadline of 1 s: the attacks below last 30 s or forever
DRIP_SECONDS = 30   # a dripping server gives up after this
FLOOD_BYTES = 256 << 20
MEMORY = 16 << 20   # traced peak allowed while an answer is refused (the attack: 256 MiB+)


# --- a hostile server ------------------------------------------------------------------------

def gzip_bomb(size: int = FLOOD_BYTES) -> bytes:
    """A gzip stream of `size` zero bytes (~1/1000 of it)."""
    packer, chunk = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(size >> 20)) + packer.flush()


class Hostile(http.server.BaseHTTPRequestHandler):
    """Answers GET with `get` and PUT with `put` (names of the plays below); records every
    request as (method, path, Authorization)."""
    get, put = "404", "201"
    seen: list = []
    bomb = b""

    def do_GET(self):
        self._play(self.get)

    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._play(self.put)

    def _play(self, play: str) -> None:
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        try:
            getattr(self, "play_" + play.replace("-", "_"))()
        except OSError:
            pass            # the client hung up: what it should do

    def _status(self, code: int, **fields) -> None:
        self.send_response(code)
        for name, value in fields.items():
            self.send_header(name.replace("_", "-"), str(value))
        self.end_headers()

    def play_404(self):
        self._status(404, Content_Length=0)

    def play_201(self):
        self._status(201, Content_Length=0)

    def play_307(self):
        self._status(307, Location="http://127.0.0.1:9/elsewhere", Content_Length=0)

    def play_drip_body(self):
        """Headers at once, then a byte every 0.1 s: httpx's per-read timeout never fires."""
        self._status(200, Content_Length=1000)            # under every size cap
        self._drip(b"x" * 1000)

    def play_drip_headers(self):
        """The status line, then the headers a byte every 0.1 s."""
        self.wfile.write(b"HTTP/1.0 200 OK\r\n")
        self._drip(b"X-Slow: " + b"a" * 100_000)

    def play_flood(self):
        """A 2xx, then 256 MiB (no Content-Length: until the connection closes)."""
        self._status(200)
        chunk = bytes(1 << 20)
        for _ in range(FLOOD_BYTES >> 20):
            self.wfile.write(chunk)

    def play_gzip(self):
        """A small body that a client which decompresses expands to 256 MiB."""
        self._status(200, Content_Encoding="gzip", Content_Length=len(self.bomb))
        self.wfile.write(self.bomb)

    def _drip(self, data: bytes) -> None:
        end = time.monotonic() + DRIP_SECONDS
        for byte in data:
            if time.monotonic() > end:
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.1)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def bomb() -> bytes:
    return gzip_bomb()


@pytest.fixture
def hostile(bomb, loopback):
    def start(get: str = "404", put: str = "201"):
        return loopback(Hostile, get=get, put=put, seen=[], bomb=bomb)
    return start


def lookup_all(remote, graph) -> list:
    return [remote.lookup(m.id, passing(graph, m.id)[1]) for m in graph]


def name_server(project, url: str):
    """Make the checkout's graph.toml name `url` as the team's remote cache (what a pull
    request can do); its graph."""
    project.write("graph.toml", project.read("graph.toml").replace(
        'tests_dir = "tests"\n', f'tests_dir = "tests"\nremote_cache = "{url}"\n'))
    return load(project.root)


# --- 1. a server named by graph.toml, which any pull request can edit -----------------------

def test_a_server_named_by_graph_toml_gets_nothing_unless_the_user_allows_its_host(
        tmp_path, hostile):
    url, server = hostile()
    graph = name_server(build(tmp_path / "a"), url)
    host = url.split("/")[2]
    user = {"ORCHESTRATOR_CACHE_KEY": KEY, "ORCHESTRATOR_REMOTE_CACHE_TOKEN": TOKEN,
            "XDG_CONFIG_HOME": str(tmp_path / "config")}
    said = Said()
    remote = RemoteCache.from_environment(graph, [], user, say=said)
    if remote is not None:                 # the old client asked it, the token and all
        lookup_all(remote, graph)
        remote.close(wait=10)
    assert remote is None and server.seen == []
    assert len(said) == 1 and said[0].startswith("note: remote cache not used: graph.toml "
                                                 f"names the server {url}, which you have "
                                                 "not allowed") \
        and f"ORCHESTRATOR_REMOTE_CACHE_HOSTS={host}" in said[0], said

    # allowed, in the environment or in the user's hosts file: used, but the token stays
    # with the server the user named together with it (ORCHESTRATOR_REMOTE_CACHE)
    (tmp_path / "config" / "orchestrator").mkdir(parents=True)
    (tmp_path / "config" / "orchestrator" / "remote-cache-hosts").write_text(
        "# servers graph.toml may name\n127.0.0.1\n")
    for allowed in ({"ORCHESTRATOR_REMOTE_CACHE_HOSTS": f"cache.example.org, {host}"}, {}):
        said = Said()
        remote = RemoteCache.from_environment(graph, [], {**user, **allowed}, say=said)
        remote.announce()
        assert lookup_all(remote, graph) == [None] * 4
        remote.close(wait=10)
        assert said == [f"remote cache: {url} (read-write; ORCHESTRATOR_REMOTE_CACHE_TOKEN not "
                        "sent: it goes only to the server ORCHESTRATOR_REMOTE_CACHE names)"]
        assert server.seen and {auth for _, _, auth in server.seen} == {None}
    server.seen.clear()
    remote = cache(graph, url, Said(), ORCHESTRATOR_REMOTE_CACHE_TOKEN=TOKEN)
    lookup_all(remote, graph)
    remote.close(wait=10)
    assert server.seen and {auth for _, _, auth in server.seen} == {f"Bearer {TOKEN}"}


def test_a_doit_run_names_its_server_first_and_never_one_only_graph_toml_names(
        tmp_path, hostile):
    url, server = hostile()
    user = {"ORCHESTRATOR_CACHE_KEY": KEY, "ORCHESTRATOR_REMOTE_CACHE_TOKEN": TOKEN}
    wired = Wired(tmp_path / "b", **user)
    name_server(wired.project, url)
    run = wired.doit("all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert set(run.statuses.values()) == {"PASSED"} and server.seen == []
    notes = [line for line in run.stderr.splitlines() if "remote cache" in line]
    assert len(notes) == 1 and "which you have not allowed" in notes[0], run.stderr

    # the user's own server, credentials in its URL: the run's first line names it, redacted
    own = url.replace("http://", "http://ci:hunter2-secret@")
    run = Wired(tmp_path / "c", **user, ORCHESTRATOR_REMOTE_CACHE=own).doit("all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr.splitlines()[0] == f"remote cache: {url} (read-write)", run.stderr
    assert "hunter2" not in run.stdout + run.stderr


# --- 2. a server that answers slowly, or too much -------------------------------------------

@pytest.mark.parametrize("put", ["drip-body", "flood", "gzip"])
def test_an_upload_answered_slowly_or_with_too_much_costs_one_deadline_and_one_line(
        tmp_path, hostile, put):
    url, server = hostile(put=put)
    _, graph = minicalc(tmp_path / "a")
    said = Said()
    remote = cache(graph, url, said, ORCHESTRATOR_REMOTE_CACHE_TIMEOUT="1")
    _ = remote.client          # made first: importing httpx is not what is measured
    tracemalloc.start()
    try:
        started = time.monotonic()
        remote.upload(*passing(graph, "02_add"))
        took = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY, f"{peak >> 20} MiB traced"
    assert took < BOUND, f"{took:.1f}s for a deadline of 1s"
    assert len(said) == 1 and said[0].startswith(f"warning: remote cache {url} not used: ") \
        and said[0].endswith("this run goes on locally"), said
    asked = len(server.seen)
    remote.upload(*passing(graph, "03_mul"))
    assert remote.lookup("01_numbers", passing(graph, "01_numbers")[1]) is None
    assert len(server.seen) == asked and len(said) == 1


@pytest.mark.parametrize("get, why", [
    ("drip-body", "no complete answer within 1s"),      # was: within 2s, twice the timeout
    ("drip-headers", "no complete answer within 1s"),   # was: as long as the server drips
    ("gzip", "Content-Encoding gzip"),
])
def test_a_lookup_answered_slowly_or_compressed_is_cut_at_the_deadline(
        tmp_path, hostile, get, why):
    url, _ = hostile(get=get)
    _, graph = minicalc(tmp_path / "a")
    said = Said()
    remote = cache(graph, url, said, ORCHESTRATOR_REMOTE_CACHE_TIMEOUT="1")
    _ = remote.client          # made first: importing httpx is not what is timed
    started = time.monotonic()
    assert lookup_all(remote, graph) == [None] * 4
    took = time.monotonic() - started
    assert took < BOUND, f"{took:.1f}s for a deadline of 1s"
    assert len(said) == 1 and why in said[0] and url in said[0], said


# --- 3. an entry written by hand into a shared directory ------------------------------------

def declared_in(project, module_id: str) -> dict[str, str]:
    """The declared inputs `orchestrator cache import` computes, computed by the same
    command line in the same environment (keys depend on it)."""
    code = ("import json, sys; from orchestrator.cache import keys; "
            "from orchestrator.core.graph import load; g = load(sys.argv[1]); "
            f"print(json.dumps(keys.declared(g, g['{module_id}'], [], prospective=True)))")
    run = subprocess.run([sys.executable, "-c", code, str(project.root)], cwd=project.root,
                         env=project.env(), capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def hand_made_pass(project, module_id: str) -> tuple[Result, str]:
    """A pass nobody ran, keyed right: (the result, the digest of its declared inputs)."""
    declared = declared_in(project, module_id)
    result = Result.from_dict({
        "module": module_id, "status": "passed", "cause": "none", "reason": "",
        "key": keys.digest(declared), "inputs": declared, "counts": {"passed": 1},
        "tests": {f"tests/{module_id}/t.py::t": {"outcome": "passed"}}})
    return result, keys.digest(declared)


def plant(directory: Path, result: Result, declared: str, key: str | None = None) -> None:
    """The result as a file of the old flat layout (<key>.json) and as an entry (ac/, cas/):
    signed with `key`, or not signed at all."""
    blob = result.to_json().encode()
    (directory / "cas").mkdir(parents=True, exist_ok=True)
    (directory / "ac").mkdir(parents=True, exist_ok=True)
    (directory / f"{result.key}.json").write_bytes(blob)
    (directory / "cas" / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    envelope = {"format": remote_entry.FORMAT, "module": result.module, "declared": declared,
                "key": result.key, "cas": hashlib.sha256(blob).hexdigest(), "size": len(blob)}
    if key is not None:
        envelope["key_id"] = remote_entry.key_id(key.encode())
        envelope["signature"] = remote_entry.signature(key.encode(), envelope)
    (directory / "ac" / remote_entry.ac_address(result.module, declared)).write_bytes(
        remote_entry.action_result(json.dumps(envelope).encode()))


def orchestrator(project, *args: str, key: str | None = KEY, limit_memory: bool = False,
                 timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**project.env(), **({"ORCHESTRATOR_CACHE_KEY": key} if key else {})}
    def small():           # an import that reads /dev/zero whole fails, not the machine
        import resource  # POSIX only, like the whole module
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    try:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=project.root,
                              env=env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=small if limit_memory else None)
    except subprocess.TimeoutExpired:
        pytest.fail(f"orchestrator {' '.join(args)} still ran after {timeout}s")


def test_a_pass_written_by_hand_into_a_directory_is_not_imported(tmp_path):
    project = build(tmp_path / "a")
    project.append(project.test_file("02_add"), "\n\ndef test_broken():\n    assert False\n")
    shared = tmp_path / "shared"
    plant(shared, *hand_made_pass(project, "02_add"))                  # not signed
    plant(tmp_path / "forged", *hand_made_pass(project, "02_add"), key=OTHER_KEY)

    run = orchestrator(project, "cache", "import", str(shared))
    assert run.returncode == 0, run.stderr
    assert "02_add: rejected: it is not signed" in run.stdout.splitlines(), run.stdout
    assert run.stdout.splitlines()[-1] == "imported 0 of 4 results"
    run = orchestrator(project, "cache", "import", str(tmp_path / "forged"))
    assert "02_add: rejected: it is signed with another key" in run.stdout.splitlines()
    doit = project.doit("test:02_add")
    assert doit.statuses["02_add"] == "FAILED", doit.stdout

    # without the key nothing can be verified: one line, exit 3, nothing imported
    run = orchestrator(project, "cache", "import", str(shared), key=None)
    assert run.returncode == 3 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "error: cache import: ORCHESTRATOR_CACHE_KEY is not set, so no entry can be "
        f"verified; set it to the key the entries were signed with, or pass "
        f"--allow-unsigned to trust {shared}"], run.stderr
    # the user may vouch for a directory nobody else writes: its content is still checked
    run = orchestrator(project, "cache", "import", "--allow-unsigned", str(shared), key=None)
    assert run.returncode == 0 and "02_add: imported" in run.stdout.splitlines(), run.stdout


def test_export_signs_entries_and_import_checks_them_with_the_same_key(tmp_path):
    from orchestrator.cache.remote_cache import Outcome, export_results, import_results
    from orchestrator.cache.remote_entry import Trust
    from orchestrator.cache.store import Store
    project, graph = minicalc(tmp_path / "a")
    for module in graph:
        Store(graph.root).save(passing(graph, module.id)[0])
    shared = tmp_path / "shared"
    done = export_results(graph, shared, KEY.encode())
    assert done.modules == [m.id for m in graph] and done.kept == [] and done.signed
    envelopes = [json.loads(remote_entry.stdout_raw(p.read_bytes()))
                 for p in (shared / "ac").iterdir()]
    assert all(e["key_id"] == remote_entry.key_id(KEY.encode()) for e in envelopes)

    _, other = minicalc(tmp_path / "b")
    found = import_results(other, shared, KEY.encode())
    assert [e.outcome for e in found] == [Outcome.IMPORTED] * 4
    found = import_results(other, shared, OTHER_KEY.encode())
    assert {str(e) for e in found} == {"rejected: it is signed with another key"}
    unsigned = export_results(graph, tmp_path / "unsigned", None)
    assert not unsigned.signed
    found = import_results(other, tmp_path / "unsigned", KEY.encode())
    assert {str(e) for e in found} == {"rejected: it is not signed"}
    found = import_results(other, tmp_path / "unsigned", None, Trust.UNSIGNED)
    assert [e.outcome for e in found] == [Outcome.IMPORTED] * 4


# --- 4. one bad entry costs one entry ---------------------------------------------------------

def test_a_truncated_entry_is_a_miss_for_its_module_and_the_next_upload_replaces_it(
        nginx, tmp_path):
    _, graph = minicalc(tmp_path / "a")
    writer = cache(graph, nginx.url, Said())
    for module in graph:
        writer.upload(*passing(graph, module.id))
    address = remote_entry.ac_address("02_add", keys.digest(passing(graph, "02_add")[1]))
    entry = nginx.data / "ac" / address
    entry.write_bytes(entry.read_bytes()[:40])

    said = Said()
    remote = cache(graph, nginx.url, said)
    found = lookup_all(remote, graph)
    assert [r is not None for r in found] == [True, False, True, True]
    assert len(said) == 1 and said[0].startswith("warning: remote cache: 02_add entry "
                                                 "rejected: it is not a cache entry"), said
    assert remote.usable
    remote.upload(*passing(graph, "02_add"))             # it ran here and passed
    assert remote.counts["uploaded"] == 1 and len(said) == 1
    assert cache(graph, nginx.url, Said()).lookup("02_add", passing(graph, "02_add")[1]) \
        is not None


# --- 5. secrets in lines ----------------------------------------------------------------------

@pytest.mark.parametrize("url, token", [
    ("ftp://ci:hunter2-secret@127.0.0.1/cache", None),
    ("http://ci:hunter2-secret@127.0.0.1/cache?x=1", None),
    ("http://ci:hunter2-secret@127.0.0.1:notaport/cache", None),
    ("http://ci:hunter2-secret@127.0.0.1:{port}/cache", None),        # nothing listens
    ("{server}", "hunter2-secret\nX-Injected: 1"),                   # a token httpx refuses
], ids=["scheme", "query", "port", "refused", "token"])
def test_no_line_shows_a_password_or_a_token(tmp_path, hostile, url, token):
    served, _ = hostile()
    url = url.format(port=free_port(), server=served)
    _, graph = minicalc(tmp_path / "a")
    said = Said()
    environ = {"ORCHESTRATOR_REMOTE_CACHE": url, "ORCHESTRATOR_CACHE_KEY": KEY,
               **({"ORCHESTRATOR_REMOTE_CACHE_TOKEN": token} if token else {})}
    remote = RemoteCache.from_environment(graph, [], environ, say=said)
    if remote is not None:
        lookup_all(remote, graph)
        remote.close(wait=10)
    assert len(said) == 1 and said[0].startswith("warning: remote cache"), said
    assert "hunter2" not in said[0], said


# --- 6. a redirect --------------------------------------------------------------------------

def test_a_redirected_upload_is_one_line_on_the_terminal_while_doit_captures_output(
        tmp_path, hostile, capfd):
    url, server = hostile(put="307")
    _, graph = minicalc(tmp_path / "a")
    remote = RemoteCache.from_environment(
        graph, [], {"ORCHESTRATOR_REMOTE_CACHE": url, "ORCHESTRATOR_CACHE_KEY": KEY})
    capfd.readouterr()
    # doit runs a test task's action (where the upload happens) with sys.stderr captured
    with contextlib.redirect_stderr(io.StringIO()) as captured:
        for module_id in ("01_numbers", "02_add"):
            remote.upload(*passing(graph, module_id))
    remote.close()
    lines = capfd.readouterr().err.splitlines()
    assert lines == [f"warning: remote cache {url}: upload refused: PUT /cas/ answered HTTP "
                     "307, a redirect to http://127.0.0.1:9/elsewhere, which is not followed; "
                     "this run uploads nothing more"], lines
    assert captured.getvalue() == "" and [m for m, _, _ in server.seen] == ["PUT"]


def test_a_redirected_lookup_is_one_line(tmp_path, hostile):
    url, _ = hostile(get="307")
    _, graph = minicalc(tmp_path / "a")
    said = Said()
    assert lookup_all(cache(graph, url, said), graph) == [None] * 4
    assert len(said) == 1 and "answered HTTP 307, a redirect to http://127.0.0.1:9/elsewhere, " \
        "which is not followed" in said[0], said


# --- 7. what an upload carries ----------------------------------------------------------------

def test_an_upload_carries_no_path_outside_the_project(nginx, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/home/alice")
    _, graph = minicalc(tmp_path / "a")
    root = str(graph.root)
    said = Said()
    remote = cache(graph, nginx.url, said)

    result, declared = passing(graph, "02_add")        # a hand-made result: its free text
    result.log = f"{root}/.orchestrator/logs/02_add.log"
    result.leftovers = [f"4242 /home/alice/.venv/bin/python -m helper {root}/tests/x.py"]
    result.tests["tests/02_add/t.py::test"]["message"] = f"warning at {root}/tests/02_add/t.py:3"
    remote.upload(result, declared)
    assert said == [] and len(nginx.puts()) == 2
    blob = nginx.entries("cas")[0].read_text()
    assert root not in blob and "/home/alice" not in blob
    shared = json.loads(blob)
    assert shared["log"] == ".orchestrator/logs/02_add.log"
    assert shared["leftovers"] == ["4242 <outside> -m helper tests/x.py"]
    assert shared["tests"]["tests/02_add/t.py::test"]["message"] == "warning at tests/02_add/t.py:3"
    assert cache(graph, nginx.url, Said()).lookup("02_add", declared).key == result.key

    # a key entry cannot be rewritten (it is the key): such a result stays here
    private, declared = passing(graph, "03_mul")
    private.inputs["outside:/home/alice/.local/lib/python3.11/site-packages/helper.py"] = \
        "0" * 64
    private.key = keys.digest(private.inputs)
    remote.upload(private, declared)
    assert len(said) == 1 and said[0] == (
        "warning: remote cache: 03_mul not uploaded: its result names /home/alice/.local/lib/"
        "python3.11/site-packages/helper.py (in inputs), a path outside the project: "
        "results are shared without private paths"), said
    assert len(nginx.puts()) == 2 and remote.usable


# --- 8. a directory with a symlink to /dev/zero, a FIFO, a huge file --------------------------

def test_import_reads_regular_files_only_each_bounded(tmp_path):
    project = build(tmp_path / "a")
    shared = tmp_path / "shared"
    (shared / "ac").mkdir(parents=True)
    (shared / "cas").mkdir()
    os.symlink("/dev/zero", shared / "zero.json")             # the old flat layout
    os.mkfifo(shared / "fifo.json")
    address = {m: remote_entry.ac_address(m, keys.digest(declared_in(project, m)))
               for m in ("01_numbers", "02_add", "03_mul", "04_power")}
    os.symlink("/dev/zero", shared / "ac" / address["01_numbers"])
    os.mkfifo(shared / "ac" / address["02_add"])
    result, declared = hand_made_pass(project, "03_mul")
    plant(shared, result, declared, key=KEY)
    blob = next(p for p in (shared / "cas").iterdir())
    blob.unlink()
    os.symlink("/dev/zero", blob)                             # a signed entry, its blob /dev/zero
    (shared / "ac" / address["04_power"]).write_bytes(b"\x2a" * (100 << 10))

    started = time.monotonic()
    run = orchestrator(project, "cache", "import", str(shared), limit_memory=True, timeout=60)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:4] == [
        f"01_numbers: rejected: ac/{address['01_numbers']} is not a regular file",
        f"02_add: rejected: ac/{address['02_add']} is not a regular file",
        f"03_mul: rejected: cas/{blob.name} is not a regular file",
        f"04_power: rejected: ac/{address['04_power']} is larger than 65536 bytes"], lines
    assert lines[4:] == ["imported 0 of 4 results"]
    assert time.monotonic() - started < 60
