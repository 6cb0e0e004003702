"""One page of ours in a fresh headless Chromium, for the in-browser backends other than ``tfjs``.

The browser is started by :class:`backends.tfjs.browser.Browser` and the page served by
:class:`backends.tfjs.server.PageServer` (the same flags, no-network rules and process clean-up
as ``tfjs``). The page answers :meth:`backends.tfjs.browser.Browser.call`, the protocol of the
tfjs page (``window.digitbench.call(name, args)``, each call bounded even when the browser
freezes). :class:`PageBackend` is the part such backends share: starting the page, restarting a
browser that died or hung and retrying its batch, and stopping it all.
"""
from __future__ import annotations

import abc
import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from backends.tfjs.browser import Browser, BrowserSpec
from backends.tfjs.page import warmup_photo
from backends.tfjs.server import PageServer, folder_files
from backends.tfjs.site import WEB_DIR as TFJS_WEB_DIR
from bench.backend import Backend
from bench.clock import ms_since
from bench.errors import EngineError, EngineGone, EngineHung, first_line
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Recognition

NAVIGATION_MS = ("const n = performance.getEntriesByType('navigation')[0];"
                 "return n ? n.loadEventEnd - n.startTime : null;")

COMMON_DIR = Path(__file__).resolve().parent / "web"
"""``common.js``, what the peers' pages share, served under ``/common/``."""
LOAD_TIMEOUT_S = 120.0
"""For the page and its libraries and model, loaded from the local server."""

__all__ = ["PageBackend", "WebPage", "browser_problem"]


def browser_problem(chromium: str, chromedriver: str, flag_prefix: str) -> str | None:
    """Why the local browser cannot start (Selenium, Chromium, chromedriver), with the fix."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed: pip install selenium (see requirements.lock)"
    if not Path(chromium).is_file():
        return f"no Chromium at {chromium}: apt-get install chromium (or pass {flag_prefix}-chromium PATH)"
    if not (Path(chromedriver).is_file() or shutil.which(chromedriver)):
        return (f"no chromedriver at {chromedriver}: apt-get install chromium-driver "
                f"(or pass {flag_prefix}-chromedriver PATH)")
    return None


class WebPage:
    """A browser showing ``path`` of ``server``; :meth:`call` runs one page API call."""

    def __init__(self, spec: BrowserSpec, server: PageServer, path: str, timeout_s: float,
                 option_hint: str = "") -> None:
        self.spec = spec
        self.server = server
        self.path = path
        self.timeout_s = timeout_s
        self.option_hint = option_hint
        self.browser: Browser | None = None

    def open(self, load_timeout_s: float) -> float | None:
        """Start the browser and load the page; returns the page's own load time (Navigation Timing, ms)."""
        self.browser = Browser(self.spec, self.timeout_s)
        self.browser.bound(load_timeout_s)
        self.browser.driver.get(self.server.url + self.path)
        return self.browser.driver.execute_script(NAVIGATION_MS)

    @property
    def version(self) -> str | None:
        return self.browser.version if self.browser else None

    def call(self, name: str, args: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        """The value of one page call; :class:`EngineHung`, :class:`EngineGone` or :class:`EngineError` if not."""
        if self.browser is None:
            raise EngineGone("the browser is not running")
        return self.browser.call(name, args, timeout_s or self.timeout_s, "" if timeout_s else self.option_hint)

    def close(self) -> None:
        """Quit the browser. Safe to call more than once."""
        browser, self.browser = self.browser, None
        if browser is not None:
            browser.close()


class PageBackend(Backend):
    """A backend whose recognizer runs in a page of ours in headless Chromium.

    Subclasses say which page (:attr:`page_path`), what to serve (:meth:`serve`) and how the page
    loads its recognizer (:meth:`load`); their options have ``batch_timeout_s``,
    ``max_restarts``, ``chromium`` and ``chromedriver``.
    """

    page_path: ClassVar[str] = "/"
    flag_prefix: ClassVar[str] = ""
    web_dir: ClassVar[Path] = COMMON_DIR
    """The page's folder, where ``npm ci`` installs its packages."""
    required_files: ClassVar[tuple[Path, ...]] = ()
    """Files from those packages without which the page cannot run."""

    def __init__(self, options: Any = None, row: str | None = None) -> None:
        super().__init__(options, row)
        self.server: PageServer | None = None
        self.page: WebPage | None = None
        self.restarts = 0
        self._warming = False

    @classmethod
    def page_problem(cls, options: Any) -> str | None:
        """Why the browser or the page's packages are not there, with the fix; ``None`` when they are."""
        problem = browser_problem(options.chromium, options.chromedriver, cls.flag_prefix)
        if problem:
            return problem
        missing = [p for p in cls.required_files if not p.is_file()]
        if missing:
            return f"npm packages of the {cls.name} page missing ({missing[0].name}): run `npm ci` in {cls.web_dir} " \
                   "(or `make setup`)"
        return None

    def page_server(self, model_folder: Path, folders: dict[str, Path], isolated: bool = False) -> PageServer:
        """A page server for the files of ``folders`` and ``common.js``, and ``model_folder``'s under ``/model/``."""
        files: dict[str, Path] = {"/page/letterbox.js": TFJS_WEB_DIR / "letterbox.js"}
        for prefix, folder in {"/model/": model_folder, "/common/": COMMON_DIR, **folders}.items():
            files.update(folder_files(prefix, folder))
        return PageServer(files, isolated=isolated)

    @abc.abstractmethod
    def serve(self) -> PageServer:
        """The page server with everything the page needs."""

    @abc.abstractmethod
    def load(self, page: WebPage) -> ColdStart:
        """Load the recognizer into a freshly opened page; the cold-start split."""

    def open(self) -> ColdStart:
        self.server = self.serve()
        return self._start()

    def _start(self) -> ColdStart:
        start = time.perf_counter_ns()
        page = WebPage(BrowserSpec(self.options.chromium, self.options.chromedriver), self.server, self.page_path,
                       self.options.batch_timeout_s, f"{self.flag_prefix}-batch-timeout-s")
        try:
            page_load_ms = page.open(LOAD_TIMEOUT_S)
            browser_ms = ms_since(start)
            cold = self.load(page)
        except BaseException:
            page.close()
            raise
        self.page = page
        return dataclasses.replace(cold, details={**cold.details, "browser_start_ms": round(browser_ms, 3),
                                                  "page_load_ms": page_load_ms})

    def _restart(self) -> str | None:
        """Start a fresh browser after a crash or hang, warmed up with one throwaway photo; the reason to
        give up instead, if any."""
        if self.page is not None:
            self.page.close()
            self.page = None
        if self.restarts >= self.options.max_restarts:
            return f"browser not restarted again after {self.restarts} restarts ({self.flag_prefix}-max-restarts)"
        self.restarts += 1
        try:
            self._start()
            self._warming = True
            try:
                self.recognize([warmup_photo()])
            finally:
                self._warming = False
        except Exception as exc:
            if self.page is not None:
                self.page.close()
                self.page = None
            return f"restart failed: {first_line(exc)}"
        return None

    def recognize_in_page(self, photos: Sequence[LoadedPhoto], name: str, args: dict[str, Any],
                          photo_bytes: dict[str, bytes],
                          convert: Callable[[LoadedPhoto, dict[str, Any]], Recognition]) -> list[Recognition]:
        """One page call for a batch whose photos are served as ``photo_bytes``; each raw result converted.

        A page error fails the batch; a dead or hung browser is restarted and the batch retried once,
        as ``tfjs`` does.
        """
        def failed(message: str) -> list[Recognition]:
            return [Recognition.failed(message) for _ in photos]

        problem = None
        for _attempt in range(2):
            if self.page is None:
                return failed(problem or "the browser is not running (it gave out earlier in this row)")
            self.server.put_photos(photo_bytes)
            try:
                raw = self.page.call(name, args)
            except (EngineGone, EngineHung) as exc:
                if self._warming:
                    raise
                problem = str(exc)
                gave_up = self._restart()
                if gave_up:
                    return failed(f"{problem}; {gave_up}")
                continue
            except EngineError as exc:
                return failed(str(exc))
            finally:
                self.server.put_photos({})
            return [convert(photo, item) for photo, item in zip(photos, raw)]
        return failed(f"browser failed twice on this batch: {problem}")

    def close(self) -> None:
        page, self.page = self.page, None
        server, self.server = self.server, None
        try:
            if page is not None:
                page.close()
        finally:
            if server is not None:
                server.close()
