"""Starting and stopping headless Chromium through WebDriver, locally or on a remote endpoint.

Reusable by any browser backend: ``Browser(BrowserSpec(...))`` gives a driver, ``cdp()`` and
``call()``, the page API of our pages (``window.digitbench.call(name, args)``, which resolves to
``{ok, value}`` or ``{ok: false, error}``). Every WebDriver call is bounded twice: in the browser
(script and page-load timeouts) and here (the HTTP read timeout, a little longer), so a frozen
browser, which answers neither, costs one timeout and is then killed, not waited for. Locally
the system chromedriver is started by path (Selenium Manager never runs) in its own session, so
a Ctrl-C reaches only digitbench, which then quits the browser in order. The
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
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import EngineError, EngineGone, EngineHung, first_line

CALL = ("const done = arguments[arguments.length - 1];"
        "if (!window.digitbench) { done({ok: false, error: 'the digitbench page is not loaded'}); return; }"
        "window.digitbench.call(arguments[0], arguments[1]).then(done);")
HTTP_MARGIN_S = 5.0
"""How much longer than the browser's own timeout a WebDriver HTTP call may wait for its answer."""
QUIT_TIMEOUT_S = 2.0
"""How long closing waits for a polite quit before the processes are killed."""
DEFAULT_TIMEOUT_S = 60.0

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


def stop_processes(processes: list[Process], grace_s: float = 2.0, polite: bool = True) -> None:
    """SIGTERM, then SIGKILL whatever of ``processes`` is left after ``grace_s``; only SIGKILL when not
    ``polite`` (a stopped or frozen process never acts on SIGTERM)."""
    for sig in (signal.SIGTERM, signal.SIGKILL) if polite else (signal.SIGKILL,):
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


def _quit_within(driver: Any, seconds: float) -> bool:
    """Whether the WebDriver session quit cleanly within ``seconds`` (asked from a thread: the HTTP
    client retries a timed-out DELETE, so its own timeout does not bound the wait)."""
    outcome: list[bool] = []

    def quit_session() -> None:
        try:
            driver.quit()
            outcome.append(True)
        except Exception:
            outcome.append(False)

    thread = threading.Thread(target=quit_session, name="webdriver-quit", daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(outcome and outcome[0])


class Browser:
    """One WebDriver session: a local chromedriver + Chromium, or a session on a remote endpoint."""

    def __init__(self, spec: BrowserSpec, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Start the browser; every later WebDriver call is bounded by ``timeout_s`` (see :meth:`bound`)."""
        self.spec = spec
        self.root: Path | None = None
        """The temporary folder holding the profile, crash dumps and home of a local browser."""
        self.service: Any = None
        self.driver: Any = None
        self.processes: list[Process] = []
        self.version: str | None = None
        self.hung = False
        """Set when a call went unanswered: closing then kills without asking the browser to quit."""
        self._bound: float | None = None
        try:
            self._start()
            self.bound(timeout_s)
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

    def bound(self, seconds: float) -> None:
        """Bound every later WebDriver call: the script and page-load timeouts in the browser, and the HTTP
        read timeout here, :data:`HTTP_MARGIN_S` longer (what catches a browser too frozen to time out)."""
        if seconds == self._bound:
            return
        from selenium.webdriver.common.timeouts import Timeouts

        self.driver.command_executor.client_config.timeout = seconds + HTTP_MARGIN_S
        self.driver.timeouts = Timeouts(script=seconds, page_load=seconds)
        self._bound = seconds

    def call(self, name: str, args: dict[str, Any] | None = None, timeout_s: float | None = None,
             option_hint: str = "") -> Any:
        """The value of one page API call, bounded by ``timeout_s`` (default: the current bound).

        Raises :class:`EngineHung` when the page or the browser does not answer in time,
        :class:`EngineGone` when the browser is gone and :class:`EngineError` when the page reports
        an error; ``option_hint`` names the option that sets the timeout.
        """
        from selenium.common.exceptions import JavascriptException, TimeoutException, WebDriverException
        from urllib3.exceptions import HTTPError, TimeoutError as HttpTimeout

        if self.driver is None:
            raise EngineGone("the browser is not running")
        hint = f" ({option_hint})" if option_hint else ""
        try:
            if timeout_s is not None:
                self.bound(timeout_s)
            result = self.driver.execute_async_script(CALL, name, args or {})
        except TimeoutException:
            self.hung = True
            raise EngineHung(f"page call {name} took longer than {self._bound:g} s{hint}") from None
        except HttpTimeout:
            self.hung = True
            raise EngineHung(f"page call {name}: the browser did not answer in {self._bound + HTTP_MARGIN_S:g} s "
                             f"(frozen){hint}") from None
        except JavascriptException as exc:
            raise EngineError(first_line(exc.msg)) from None
        except WebDriverException as exc:
            raise EngineGone(f"browser lost during {name}: {first_line(exc.msg or exc)}") from None
        except (HTTPError, OSError) as exc:
            self.hung = True
            raise EngineGone(f"browser lost during {name}: {first_line(exc)}") from None
        if not isinstance(result, dict) or not result.get("ok"):
            raise EngineError(first_line(result.get("error") if isinstance(result, dict) else result))
        return result.get("value")

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
        """Quit the session and make sure every process it started is gone, within a few seconds whatever
        state the browser is in: a hung local one is killed straight away, a remote one is asked to quit
        for :data:`QUIT_TIMEOUT_S` at most (its endpoint ends what is left). Safe to call twice."""
        driver, self.driver = self.driver, None
        polite = not self.hung or self.remote
        if driver is not None and polite and not _quit_within(driver, QUIT_TIMEOUT_S):
            self.hung = True
        if self.service is not None:
            started = {*self.processes, *self._service_tree()}
            if self.hung:
                stop_processes(list(started), polite=False)
            try:
                self.service.stop()
            except Exception:
                pass
            stop_processes(list(started), polite=not self.hung)
            self.service = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
