"""Starting and stopping headless Chromium through WebDriver, locally or on a remote endpoint.

Reusable by any browser backend: ``Browser(BrowserSpec(...))`` gives a driver and ``cdp()``.
Locally the system chromedriver is started by path (Selenium Manager never runs) in its own
session, so a Ctrl-C reaches only digitbench, which then quits the browser in order. The
browser's processes are recorded at start so :meth:`Browser.close` can make sure they are gone.
Everything the browser writes stays in one temporary folder, deleted at close: the fresh profile
(``--user-data-dir``), crash dumps (``--crash-dumps-dir``) and its ``$HOME`` (Chromium writes
``~/.pki`` and ``~/.config`` otherwise).
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-default-apps", "--disable-extensions",
    "--enable-unsafe-swiftshader", "--disable-dev-shm-usage", "--mute-audio",
)
"""Headless, and no background traffic: with these and :func:`resolver_rule` Chromium sends no DNS query."""


def resolver_rule(serve_host: str) -> str:
    """``--host-resolver-rules``: every host name fails to resolve except the page server's."""
    excluded = dict.fromkeys(["127.0.0.1", serve_host])
    return "--host-resolver-rules=MAP * ~NOTFOUND , " + " , ".join(f"EXCLUDE {host}" for host in excluded)


@dataclass(frozen=True)
class BrowserSpec:
    """Which browser to start and how."""

    chromium: str | None
    chromedriver: str
    webdriver_url: str | None = None
    serve_host: str = "127.0.0.1"
    capabilities: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Process:
    """A process by id and start time, so a recycled id is never mistaken for it."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> Process | None:
        started = _start_time(pid)
        return cls(pid, started) if started is not None else None

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started


def _start_time(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def descendants(pid: int) -> list[Process]:
    """Every living descendant of a process (Linux ``/proc``)."""
    found: list[Process] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(p for p in map(Process.of, kids) if p is not None)
            pending.extend(kids)
    return found


def stop_processes(processes: list[Process], grace_s: float = 2.0) -> None:
    """SIGTERM, then SIGKILL whatever of ``processes`` is left after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        living = [p for p in processes if p.alive()]
        if not living:
            return
        for process in living:
            try:
                os.kill(process.pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace_s
        while any(p.alive() for p in living) and time.monotonic() < deadline:
            time.sleep(0.05)


class Browser:
    """One WebDriver session: a local chromedriver + Chromium, or a session on a remote endpoint."""

    def __init__(self, spec: BrowserSpec) -> None:
        self.spec = spec
        self.root: Path | None = None
        """The temporary folder holding the profile, crash dumps and home of a local browser."""
        self.service: Any = None
        self.driver: Any = None
        self.processes: list[Process] = []
        self.version: str | None = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    @property
    def remote(self) -> bool:
        return self.spec.webdriver_url is not None

    def _options(self) -> Any:
        from selenium.webdriver import ChromeOptions

        options = ChromeOptions()
        for flag in (*CHROMIUM_FLAGS, resolver_rule(self.spec.serve_host)):
            options.add_argument(flag)
        if not self.remote:
            self.root = Path(tempfile.mkdtemp(prefix="digitbench-chromium-"))
            for part in ("profile", "crashes", "home"):
                (self.root / part).mkdir()
            options.add_argument(f"--user-data-dir={self.root / 'profile'}")
            options.add_argument(f"--crash-dumps-dir={self.root / 'crashes'}")
        if self.spec.chromium:
            options.binary_location = self.spec.chromium
        for name, value in self.spec.capabilities:
            options.set_capability(name, value)
        return options

    def _start(self) -> None:
        from selenium import webdriver

        options = self._options()
        if self.remote:
            from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection

            connection = ChromiumRemoteConnection(self.spec.webdriver_url, vendor_prefix="goog",
                                                  browser_name="chrome", ignore_proxy=True)
            self.driver = webdriver.Remote(command_executor=connection, options=options)
        else:
            from selenium.webdriver.chrome.service import Service

            home = str(self.root / "home")
            env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": f"{home}/.config", "XDG_CACHE_HOME": f"{home}/.cache",
                   "XDG_DATA_HOME": f"{home}/.local/share"}
            self.service = Service(executable_path=self.spec.chromedriver, env=env,
                                   popen_kw={"start_new_session": True})
            self.driver = webdriver.Chrome(service=self.service, options=options)
            self.processes = self._service_tree()
        self.version = self.driver.capabilities.get("browserVersion")

    def cdp(self, command: str, params: dict) -> Any:
        """A Chrome DevTools Protocol command, locally or through the remote endpoint."""
        return self.driver.execute("executeCdpCommand", {"cmd": command, "params": params})["value"]

    def _service_tree(self) -> list[Process]:
        process = self.service.process if self.service else None
        if process is None:
            return []
        own = Process.of(process.pid)
        return ([own] if own else []) + descendants(process.pid)

    def browser_processes(self) -> list[Process]:
        """Chromium's living processes (local sessions only; chromedriver not included)."""
        process = self.service.process if self.service else None
        return descendants(process.pid) if process is not None else []

    def close(self) -> None:
        """Quit the session and make sure every process it started is gone. Safe to call twice."""
        driver, self.driver = self.driver, None
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        if self.service is not None:
            started = {*self.processes, *self._service_tree()}
            try:
                self.service.stop()
            except Exception:
                pass
            stop_processes(list(started))
            self.service = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
