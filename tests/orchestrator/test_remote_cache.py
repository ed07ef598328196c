"""The remote cache over HTTP (orchestrator/cache/remote_http.py, remote_entry.py), against a
real nginx.

A server is started per test in a temp dir on a free loopback port (nginx.py); where
nginx is not installed these tests skip with that reason (CI installs it). Failure
modes nginx cannot play (slow, 5xx, garbage) come from a small Python server; attacks
(a hostile repository, server or directory) are test_remote_attacks.py.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.cache import keys, remote_entry, remote_settings
from orchestrator.cache.remote_http import RemoteCache
from orchestrator.cache.store import Cause, Result, Status
from orchestrator.core.graph import load
from tests.orchestrator.conftest import DoitRun, build
from tests.orchestrator.nginx import Nginx, find_nginx, free_port

pytestmark = pytest.mark.skipif(sys.platform != "linux",
                                reason="the tests start Debian's nginx")

KEY = "k3y-for-tests-" + "0" * 20
OTHER_KEY = "another-key-for-tests-" + "1" * 12


@pytest.fixture(name="nginx")
def nginx_server(tmp_path):
    if find_nginx() is None:
        pytest.skip("nginx is not installed (apt-get install nginx); CI installs it")
    server = Nginx(tmp_path / "nginx").start()
    yield server
    server.stop()


class Said(list):
    """The lines the cache said, instead of stderr."""

    def __call__(self, line: str) -> None:
        self.append(line)


def minicalc(root: Path):
    project = build(root)
    return project, load(project.root)


@pytest.fixture(autouse=True)
def portable_keys(monkeypatch):
    """keys.environment() without entries that are absolute paths (env:interpreter, while
    keys.py names the interpreter by its install path): a result naming one is never
    uploaded (remote_entry.shareable), and these tests are about what is uploaded. The
    doit runs below use keys.py as it is."""
    real = keys.environment
    monkeypatch.setattr(keys, "environment",
                        lambda: {k: v for k, v in real().items() if not v.startswith("/")})


def passing(graph, module_id: str) -> tuple[Result, dict]:
    declared = keys.declared(graph, graph[module_id], [], prospective=True)
    result = Result(module=module_id, status=Status.PASSED, cause=Cause.NONE, reason="",
                    key=keys.digest(declared), inputs=declared, counts={"passed": 1},
                    tests={f"tests/{module_id}/t.py::test": {"outcome": "passed"}})
    return result, declared


OPENED: list[RemoteCache] = []


@pytest.fixture(autouse=True)
def closed():
    """Every cache a test opens is closed after it, its prefetch threads finished."""
    yield
    while OPENED:
        OPENED.pop().close(wait=10)


def cache(graph, url: str, said: Said, key: str | None = KEY, **env) -> RemoteCache | None:
    environ = {"ORCHESTRATOR_REMOTE_CACHE": url, **env}
    if key:
        environ["ORCHESTRATOR_CACHE_KEY"] = key
    remote = RemoteCache.from_environment(graph, [], environ, say=said)
    if remote is not None:
        OPENED.append(remote)
    return remote


# --- the protocol, against nginx --------------------------------------------------------

def test_a_pass_goes_up_as_bazel_ac_and_cas_entries_and_comes_back_equal(nginx, tmp_path):
    _, graph = minicalc(tmp_path / "a")
    result, declared = passing(graph, "02_add")
    said = Said()
    cache(graph, nginx.url, said).upload(result, declared)
    puts = nginx.puts()
    assert [p.split("/")[-2] for p in puts] == ["cas", "ac"]      # the blob first
    assert all(p.startswith("/cache/project/") and len(p.split("/")[-1]) == 64 for p in puts)
    blob = nginx.entries("cas")[0]
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name   # content-addressed
    assert json.loads(blob.read_bytes()) == json.loads(result.to_json())

    # another checkout of the same project, with the key: the same result, verified
    _, graph_b = minicalc(tmp_path / "b")
    got = cache(graph_b, nginx.url, said).lookup("02_add", passing(graph_b, "02_add")[1])
    assert got == result and said == []


def test_a_lookup_whose_inputs_changed_here_is_a_miss(nginx, tmp_path):
    project, graph = minicalc(tmp_path / "a")
    result, declared = passing(graph, "03_mul")
    cache(graph, nginx.url, Said()).upload(result, declared)
    project.append(project.test_file("03_mul"), "\n\ndef test_more():\n    pass\n")
    said = Said()
    remote = cache(graph, nginx.url, said)
    assert remote.lookup("03_mul", keys.declared(graph, graph["03_mul"], [])) is None
    assert said == [] and remote.counts["misses"] == 1


def test_observed_inputs_are_valued_here_before_a_result_is_trusted(nginx, tmp_path):
    project, graph = minicalc(tmp_path / "a")
    project.write("data/answers.txt", "42\n")
    result, declared = passing(graph, "01_numbers")
    observed = keys.current(graph, ["observed:data/answers.txt"])
    result.inputs = {**declared, **observed}
    result.key = keys.digest(result.inputs)
    cache(graph, nginx.url, Said()).upload(result, declared)
    assert cache(graph, nginx.url, Said()).lookup("01_numbers", declared) == result
    project.write("data/answers.txt", "43\n")
    assert cache(graph, nginx.url, Said()).lookup("01_numbers", declared) is None


# --- forged passes ---------------------------------------------------------------------

def _alter_blob_in_place(nginx, envelope_path):
    blob = nginx.entries("cas")[0]
    data = json.loads(blob.read_bytes())
    data.update(status="failed", cause="tests failed", reason="x")
    blob.write_text(json.dumps(data))


def _alter_counts_and_readdress(nginx, envelope_path):
    """What a writer without the key can do best: a new blob at its true address, and the
    envelope pointed at it."""
    blob = nginx.entries("cas")[0]
    data = json.loads(blob.read_bytes())
    data["counts"] = {"passed": 1000}
    new = json.dumps(data).encode()
    address = hashlib.sha256(new).hexdigest()
    (blob.parent / address).write_bytes(new)
    _rewrite_envelope(envelope_path, cas=address, size=len(new))


def _remove_signature(nginx, envelope_path):
    _rewrite_envelope(envelope_path, signature=None)


def envelope_of(path: Path) -> dict:
    return json.loads(remote_entry.stdout_raw(path.read_bytes()))


def _rewrite_envelope(path, **changes):
    envelope = json.loads(remote_entry.stdout_raw(path.read_bytes()))
    for name, value in changes.items():
        envelope.pop(name) if value is None else envelope.__setitem__(name, value)
    path.write_bytes(remote_entry.action_result(json.dumps(envelope).encode()))


@pytest.mark.parametrize("alter, why", [
    (_alter_blob_in_place, "does not match its content address"),
    (_alter_counts_and_readdress, "signature does not check"),
    (_remove_signature, "not signed"),
], ids=["status flipped", "counts changed", "signature removed"])
def test_an_entry_altered_on_the_server_is_rejected_in_one_line(nginx, tmp_path, alter, why):
    _, graph = minicalc(tmp_path / "a")
    result, declared = passing(graph, "04_power")
    cache(graph, nginx.url, Said()).upload(result, declared)
    alter(nginx, nginx.entries("ac")[0])
    said = Said()
    assert cache(graph, nginx.url, said).lookup("04_power", declared) is None
    assert len(said) == 1 and said[0].startswith("warning: remote cache: 04_power entry "
                                                 "rejected:") and why in said[0], said


def test_an_entry_signed_with_another_key_or_for_another_module_is_rejected(nginx, tmp_path):
    _, graph = minicalc(tmp_path / "a")
    result, declared = passing(graph, "02_add")
    cache(graph, nginx.url, Said(), key=OTHER_KEY).upload(result, declared)
    said = Said()
    assert cache(graph, nginx.url, said).lookup("02_add", declared) is None
    assert len(said) == 1 and "signed with another key" in said[0]

    # a genuine entry of 02_add copied to 03_mul's address
    cache(graph, nginx.url, Said()).upload(result, declared)
    mul_declared = keys.declared(graph, graph["03_mul"], [], prospective=True)
    target = nginx.data / "ac" / remote_entry.ac_address("03_mul", keys.digest(mul_declared))
    target.write_bytes(nginx.entries("ac")[0].read_bytes())
    said = Said()
    assert cache(graph, nginx.url, said).lookup("03_mul", mul_declared) is None
    assert len(said) == 1 and "signed for another module" in said[0]


def test_a_signed_entry_must_still_fit_the_result_schema(nginx, tmp_path):
    """Even with the key (a buggy writer): a 'pass' whose counts show failures is refused."""
    _, graph = minicalc(tmp_path / "a")
    result, declared = passing(graph, "01_numbers")
    blob = result.to_json().replace('"passed": 1', '"passed": 1, "failed": 2').encode()
    envelope = remote_entry.make_envelope(KEY.encode(), result, keys.digest(declared), blob)
    (nginx.data / "cas").mkdir(parents=True)
    (nginx.data / "ac").mkdir(parents=True)
    (nginx.data / "cas" / envelope["cas"]).write_bytes(blob)
    (nginx.data / "ac" / remote_entry.ac_address("01_numbers", envelope["declared"])).write_bytes(
        remote_entry.action_result(json.dumps(envelope).encode()))
    said = Said()
    assert cache(graph, nginx.url, said).lookup("01_numbers", declared) is None
    assert len(said) == 1 and "does not fit the schema" in said[0], said


def test_without_the_key_nothing_remote_is_read_or_written(nginx, tmp_path):
    _, graph = minicalc(tmp_path / "a")
    said = Said()
    assert cache(graph, nginx.url, said, key=None) is None
    assert len(said) == 1 and "ORCHESTRATOR_CACHE_KEY is not set" in said[0]
    assert nginx.requests() == []


def test_read_only_mode_reads_and_never_uploads(nginx, tmp_path):
    _, graph = minicalc(tmp_path / "a")
    result, declared = passing(graph, "02_add")
    said = Said()
    reader = cache(graph, nginx.url, said, ORCHESTRATOR_REMOTE_CACHE_MODE="read-only")
    reader.upload(result, declared)
    assert nginx.puts() == [] and said == []
    cache(graph, nginx.url, said).upload(result, declared)
    reader = cache(graph, nginx.url, said, ORCHESTRATOR_REMOTE_CACHE_MODE="read-only")
    assert reader.lookup("02_add", declared) == result


# --- a server in trouble: one line, then the run goes on locally --------------------------

class Misbehaving(http.server.BaseHTTPRequestHandler):
    behaviour = "500"
    count = 0

    def do_GET(self):
        type(self).count += 1
        if self.behaviour == "slow":
            time.sleep(3)
        kind = "text/html" if self.behaviour == "garbage" else "application/octet-stream"
        if self.behaviour == "garbage":
            body = b"<html>Welcome to our proxy</html>"
        elif self.behaviour == "huge":
            body = b"x" * (remote_entry.MAX_AC_BYTES + 10)
        else:
            body = b"oops"
        status = 500 if self.behaviour == "500" else 200
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass     # the client gave up: that was the point

    def log_message(self, *args):
        pass


@pytest.fixture(name="loopback")
def loopback_server():
    """serve(handler class, **attributes) -> (the cache URL of a loopback HTTP server
    answering with a subclass of it, that subclass); every server stops with the test."""
    servers = []

    def serve(base, **attributes):
        handler = type(base.__name__, (base,), attributes)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/cache", handler
    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def misbehaving(loopback):
    return lambda behaviour: loopback(Misbehaving, behaviour=behaviour, count=0)


@pytest.mark.parametrize("behaviour, why", [
    ("down", "connection refused"), ("slow", "no complete answer within 0.5s"),
    ("500", "HTTP 500"), ("garbage", "an HTML page, not a cache entry")])
def test_a_server_in_trouble_costs_one_line_and_is_not_asked_again(
        tmp_path, misbehaving, behaviour, why):
    _, graph = minicalc(tmp_path / "a")
    if behaviour == "down":
        url, handler = f"http://127.0.0.1:{free_port()}/cache", None
    else:
        url, handler = misbehaving(behaviour)
    said = Said()
    remote = cache(graph, url, said, ORCHESTRATOR_REMOTE_CACHE_TIMEOUT="0.5")
    started = time.monotonic()
    results = [remote.lookup(m.id, passing(graph, m.id)[1]) for m in graph]
    took = time.monotonic() - started
    assert results == [None] * 4
    assert len(said) == 1 and said[0].startswith("warning: remote cache http://127.0.0.1:") \
        and why in said[0] and said[0].endswith("this run goes on locally"), said
    assert took < 2.5, f"{took:.1f}s: the timeout is 0.5s and the breaker stops asking"
    remote.settle(10)        # a prefetch thread may have sent its request as the breaker tripped
    asked = handler.count if handler else 0
    result, declared = passing(graph, "01_numbers")
    remote.upload(result, declared)
    assert remote.lookup("01_numbers", declared) is None
    assert (handler.count if handler else 0) == asked and len(said) == 1


def test_an_oversized_entry_is_refused_without_reading_it_whole(tmp_path, misbehaving):
    _, graph = minicalc(tmp_path / "a")
    url, _ = misbehaving("huge")
    said = Said()
    assert cache(graph, url, said).lookup("02_add", passing(graph, "02_add")[1]) is None
    assert len(said) == 1 and "larger than" in said[0]


def test_an_upload_the_server_refuses_stops_uploads_with_one_line(nginx, tmp_path):
    _, graph = minicalc(tmp_path / "a")
    said = Said()
    remote = cache(graph, nginx.url.replace("/cache/", "/readonly/"), said)   # no dav there
    for module_id in ("01_numbers", "02_add"):
        remote.upload(*passing(graph, module_id))
    assert len(said) == 1 and "upload refused" in said[0] and "HTTP 405" in said[0], said
    assert len(nginx.puts()) == 1


# --- settings ---------------------------------------------------------------------------

@pytest.mark.parametrize("environ, line", [
    ({"ORCHESTRATOR_REMOTE_CACHE": "ftp://host/x"}, "expected http://host/prefix"),
    ({"ORCHESTRATOR_REMOTE_CACHE": "http://h/x", "ORCHESTRATOR_CACHE_KEY": "short"},
     "shorter than 16 characters"),
    ({"ORCHESTRATOR_REMOTE_CACHE": "http://h/x", "ORCHESTRATOR_REMOTE_CACHE_MODE": "rw"},
     "expected one of read-write, read-only, off"),
    ({"ORCHESTRATOR_REMOTE_CACHE": "http://h/x", "ORCHESTRATOR_REMOTE_CACHE_TIMEOUT": "0"},
     "expected seconds"),
])
def test_a_bad_setting_is_one_line_and_no_remote_cache(tmp_path, environ, line):
    _, graph = minicalc(tmp_path / "a")
    said = Said()
    assert RemoteCache.from_environment(graph, [], environ, say=said) is None
    assert len(said) == 1 and said[0].startswith("warning: remote cache not used:") \
        and line in said[0], said


def test_the_environment_wins_over_graph_toml_and_mode_off_turns_it_off(tmp_path):
    configured = "https://from-graph.example/cache"
    env = {"ORCHESTRATOR_CACHE_KEY": KEY, "ORCHESTRATOR_REMOTE_CACHE_HOSTS": "from-graph.example",
           "XDG_CONFIG_HOME": str(tmp_path)}
    settings = remote_settings.Settings.from_environment
    assert settings(env, configured).url == configured
    assert settings({**env, "ORCHESTRATOR_REMOTE_CACHE": "http://env:8080/c/"}, configured).url \
        == "http://env:8080/c"
    assert settings({**env, "ORCHESTRATOR_REMOTE_CACHE_MODE": "off"}, configured) is None
    assert settings(env, "") is None
    assert remote_settings.url_problem("https://u:p@h/x", "graph.toml", credentials=False)
    assert remote_settings.redact("https://user:secret@h:9/x") == "https://h:9/x"


def test_the_envelope_rides_in_an_action_result_that_bazel_remote_may_re_encode():
    payload = b'{"format": "x"}'
    body = remote_entry.action_result(payload)
    metadata = b"\x4a\x07" + b"\x0a\x05" + b"host1"     # execution_metadata {worker: "host1"}
    assert remote_entry.stdout_raw(body + metadata) == payload
    assert remote_entry.stdout_raw(b"\x20\x00" + body) == payload      # exit_code 0 first
    for garbage in (b"<html>", b"\x2a\xff\xff", b"", b"\x20\x00"):
        with pytest.raises(ValueError):
            remote_entry.stdout_raw(garbage)


# --- end to end: doit all in two clones -------------------------------------------------

class Wired:
    """A minicalc checkout whose doit runs see the given remote cache settings (and no
    ORCHESTRATOR_* setting of the environment the tests run in)."""

    def __init__(self, root: Path, **settings: str):
        self.project = build(root)
        self.root = self.project.root
        # no user's hosts file (remote_settings.allowed_hosts) in the runs of a test
        self.settings = {"XDG_CONFIG_HOME": str(Path(root).parent / f"{Path(root).name}-config"),
                         **settings}

    def doit(self, *args: str) -> DoitRun:
        env = {k: v for k, v in self.project.env().items()
               if not k.startswith("ORCHESTRATOR_")}
        return DoitRun(subprocess.run([sys.executable, "-m", "doit", *args], cwd=self.root,
                                      env={**env, **self.settings}, capture_output=True,
                                      text=True, timeout=300))


def warnings(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("warning:")]


def signed(nginx, **more) -> dict[str, str]:
    return {"ORCHESTRATOR_REMOTE_CACHE": nginx.url, "ORCHESTRATOR_CACHE_KEY": KEY, **more}


def test_clone_b_reports_every_module_cached_from_the_server_then_runs_locally_without_it(
        nginx, tmp_path):
    first = Wired(tmp_path / "a", **signed(nginx)).doit("all")
    assert first.returncode == 0, first.stdout + first.stderr
    assert set(first.statuses.values()) == {"PASSED"} and warnings(first) == []
    assert len(nginx.puts()) == 8                     # 4 results, 4 envelopes

    clone = Wired(tmp_path / "b", **signed(nginx))
    before = len(nginx.requests())
    second = clone.doit("all")
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.statuses == dict.fromkeys(["01_numbers", "02_add", "03_mul", "04_power"],
                                            "(cached) PASSED"), second.stdout
    assert second.summary.startswith("Executed 0 out of 4")
    assert not (clone.root / ".orchestrator" / "logs").exists()     # pytest never started
    assert warnings(second) == [] and len(nginx.puts()) == 8
    # the prefetch addressed each entry as the fresh clone's export then made it: no miss
    assert [(m, s) for m, _, s in nginx.requests()[before:]] == [("GET", 200)] * 8

    asked = len(nginx.requests())
    again = clone.doit("all")                          # now the local store answers
    assert set(again.statuses.values()) == {"(cached) PASSED"}
    assert len(nginx.requests()) == asked

    nginx.stop()
    alone = Wired(tmp_path / "c", **signed(nginx)).doit("all")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert set(alone.statuses.values()) == {"PASSED"} and len(alone.statuses) == 4
    assert len(warnings(alone)) == 1 and "connection refused" in warnings(alone)[0], alone.stderr


def test_an_altered_entry_reruns_its_module_and_read_only_uploads_nothing(nginx, tmp_path):
    assert Wired(tmp_path / "a", **signed(nginx)).doit("all").returncode == 0
    uploaded = len(nginx.puts())
    envelope = next(e for e in map(envelope_of, nginx.entries("ac")) if e["module"] == "03_mul")
    blob = nginx.data / "cas" / envelope["cas"]
    data = json.loads(blob.read_bytes())
    data["counts"]["passed"] = 7
    blob.write_text(json.dumps(data))

    run = Wired(tmp_path / "b", **signed(nginx, ORCHESTRATOR_REMOTE_CACHE_MODE="read-only")
                ).doit("all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.statuses["03_mul"] == "PASSED"            # ran here
    assert {run.statuses[m] for m in ("01_numbers", "02_add", "04_power")} == \
        {"(cached) PASSED"}
    assert len(warnings(run)) == 1 and "03_mul entry rejected" in warnings(run)[0], run.stderr
    assert len(nginx.puts()) == uploaded                 # read-only: no PUT


REMOTE_CLIENT_PROBE = """
import sys
from pathlib import Path
from orchestrator.campaign.tasks import Campaign
campaign = Campaign(Path.cwd())
campaign.begin_run()
print("orchestrator.cache.remote_http" in sys.modules, campaign.remote is not None)
campaign.end_run()
"""


def test_a_run_without_a_remote_cache_does_not_load_its_client(project):
    """A no-op pays for every import: the HTTP client is loaded only when graph.toml or a
    variable names a remote cache (and a bad setting is still said: its variable does)."""
    env = project.env()
    probe = [sys.executable, "-c", REMOTE_CLIENT_PROBE]
    plain = subprocess.run(probe, cwd=project.root, env=env, capture_output=True, text=True)
    assert plain.stdout.split() == ["False", "False"], plain.stderr
    env[remote_settings.ENV_MODE] = "sometimes"
    bad = subprocess.run(probe, cwd=project.root, env=env, capture_output=True, text=True)
    assert bad.stdout.split() == ["True", "False"], bad.stderr
    assert "warning: remote cache not used: ORCHESTRATOR_REMOTE_CACHE_MODE=sometimes" in \
        bad.stderr
