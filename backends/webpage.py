"""One page of ours in a fresh headless Chromium, for the in-browser backends other than ``tfjs``.

The browser is started by :class:`backends.tfjs.browser.Browser` and the page served by
:class:`backends.tfjs.server.PageServer` (the same flags, no-network rules and process clean-up
as ``tfjs``). The page exposes ``window.digitbench.call(name, args)``, which resolves to
``{ok, value}`` or ``{ok: false, error}``, the protocol of the tfjs page.
"""
from __future__ import annotations

from typing import Any

from backends.tfjs.browser import Browser, BrowserSpec
from backends.tfjs.page import CALL, BrowserGone, PageError, PageHung
from backends.tfjs.server import PageServer
from bench.errors import first_line

NAVIGATION_MS = ("const n = performance.getEntriesByType('navigation')[0];"
                 "return n ? n.loadEventEnd - n.startTime : null;")

__all__ = ["BrowserGone", "PageError", "PageHung", "WebPage"]


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
        self._script_timeout: float | None = None

    def open(self, load_timeout_s: float) -> float | None:
        """Start the browser and load the page; returns the page's own load time (Navigation Timing, ms)."""
        self.browser = Browser(self.spec)
        self.browser.driver.set_page_load_timeout(load_timeout_s)
        self.browser.driver.get(self.server.url + self.path)
        return self.browser.driver.execute_script(NAVIGATION_MS)

    @property
    def version(self) -> str | None:
        return self.browser.version if self.browser else None

    def call(self, name: str, args: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        """The value of one page call; :class:`PageHung`, :class:`BrowserGone` or :class:`PageError` if not."""
        from selenium.common.exceptions import JavascriptException, TimeoutException, WebDriverException

        if self.browser is None or self.browser.driver is None:
            raise BrowserGone("the browser is not running")
        timeout = timeout_s or self.timeout_s
        try:
            if timeout != self._script_timeout:
                self.browser.driver.set_script_timeout(timeout)
                self._script_timeout = timeout
            result = self.browser.driver.execute_async_script(CALL, name, args or {})
        except TimeoutException:
            hint = f" ({self.option_hint})" if self.option_hint and not timeout_s else ""
            raise PageHung(f"page call {name} took longer than {timeout:g} s{hint}") from None
        except JavascriptException as exc:
            raise PageError(first_line(exc.msg)) from None
        except WebDriverException as exc:
            raise BrowserGone(f"browser lost during {name}: {first_line(exc.msg or exc)}") from None
        if not isinstance(result, dict) or not result.get("ok"):
            raise PageError(first_line(result.get("error") if isinstance(result, dict) else result))
        return result.get("value")

    def close(self) -> None:
        """Quit the browser. Safe to call more than once."""
        browser, self.browser = self.browser, None
        if browser is not None:
            browser.close()
