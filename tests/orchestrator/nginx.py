"""A real HTTP cache server for the remote cache's tests and bench: Debian's nginx with
WebDAV PUT, as docs/REMOTE_CACHE.md tells a user to configure it.

    server = Nginx(tmp_path / "nginx")    # config, data, logs in that folder
    server.start()                        # on a free loopback port; server.url
    ...; server.puts(); server.stop()

Nothing global: the config, the pid file, the temp paths and the logs are in the folder.
From a shell (.ci/run), the same server outlives the command that started it:

    url=$(python tests/orchestrator/nginx.py start DIR)    # prints the cache URL
    python tests/orchestrator/nginx.py stop DIR
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
{user}pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/data;
        client_max_body_size 16m;
        location /cache/ {{
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, root: Path, prefix: str = "/cache/project"):
        self.root = Path(root)
        self.prefix = prefix
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def data(self) -> Path:
        """Where the server keeps the entries: data/<prefix>/ac/<hash>, .../cas/<hash>."""
        return self.root / "data" / self.prefix.strip("/")

    def start(self, port: int | None = None) -> Nginx:
        binary = find_nginx()
        if binary is None:
            raise FileNotFoundError("nginx is not installed")
        for sub in ("data", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for _ in range(5):                       # a free port can be taken before we bind it
            self.port = port or free_port()
            user = "user root;\n" if os.geteuid() == 0 else ""   # workers must write our dirs
            conf = self.root / "nginx.conf"
            conf.write_text(CONFIG.format(root=self.root, port=self.port, user=user))
            self.process = subprocess.Popen(
                [binary, "-p", str(self.root), "-c", str(conf), "-e", str(self.root / "error.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_listening():
                return self
            self.stop()
        raise RuntimeError(f"nginx did not start: {self.errors()}")

    def _wait_listening(self, seconds: float = 10) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)      # nginx: fast shutdown, workers included
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def errors(self) -> str:
        try:
            return (self.root / "error.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request so far, from the access log. nginx logs a
        request just after it answers it: the log is read until it stops growing."""
        lines, seen = self._log(), None
        for _ in range(40):
            if lines == seen:
                break
            time.sleep(0.05)
            seen, lines = lines, self._log()
        found = []
        for line in lines:
            try:
                request, status = line.split('"')[1], int(line.split('"')[2].split()[0])
                method, path = request.split()[:2]
            except (IndexError, ValueError):
                continue
            found.append((method, path, status))
        return found

    def _log(self) -> list[str]:
        try:
            return (self.root / "access.log").read_text().splitlines()
        except FileNotFoundError:
            return []

    def puts(self) -> list[str]:
        return [path for method, path, _ in self.requests() if method == "PUT"]

    def entries(self, kind: str) -> list[Path]:
        directory = self.data / kind
        return sorted(directory.iterdir()) if directory.is_dir() else []


def stop_by_pid_file(root: Path, seconds: float = 10) -> None:
    """Stop the server a `start` command left running in `root`."""
    try:
        pid = int((Path(root) / "nginx.pid").read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: nginx.py start|stop DIR", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    if argv[0] == "stop":
        stop_by_pid_file(root)
        return 0
    try:
        server = Nginx(root).start()
    except (OSError, RuntimeError) as e:
        print(f"nginx not started: {e}", file=sys.stderr)
        return 1
    server.process = None          # left running: `stop DIR` ends it
    print(server.url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
