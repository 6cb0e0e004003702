"""Open a static report (report.html, nightly index.html) in real headless Chromium and take a screenshot.

    .venv/bin/python scripts/screenshot_report.py reports/RUN/report.html docs/report.png [--until "Failure gallery"]

The page is loaded from disk in Chromium started as the tfjs backend starts it (``backends.tfjs.browser``:
the same flags, every host name unresolvable, a fresh profile and ``$HOME``, deleted afterwards), so a
page that reached for the network would fail here. Prints the browser's console errors and exits 1
when there are any, or when an embedded figure did not decode. ``--until HEADING`` cuts the
picture above that ``<h2>`` (e.g. to leave dataset photos out of a picture meant for the README).
"""
from __future__ import annotations

import argparse
import base64
import io
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.tfjs.browser import Browser, BrowserSpec  # noqa: E402

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@dataclass(frozen=True)
class Figure:
    """An embedded figure as the browser laid it out: its alt text, whether it decoded, its box in CSS px."""

    alt: str
    decoded: bool
    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class PageShot:
    """What the browser made of a page: the PNG, its console errors, the figures and the page height."""

    png: bytes
    console_errors: list[str]
    figures: list[Figure]
    height: int


def unavailable_reason() -> str | None:
    """Why Chromium cannot be started here, or None."""
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    if not (Path(CHROMEDRIVER).is_file() or shutil.which(CHROMEDRIVER)):
        return f"no chromedriver at {CHROMEDRIVER}: apt-get install chromium-driver"
    return None


FIGURES_JS = """
return Array.from(document.querySelectorAll('img')).map(img => {
  const r = img.getBoundingClientRect();
  return [img.alt, img.complete && img.naturalWidth > 0, r.left + scrollX, r.top + scrollY, r.width, r.height];
});
"""


def shoot(page: Path, width: int = 1280, until: str | None = None) -> PageShot:
    """Load ``page`` in headless Chromium and capture the whole page (or the part above ``until``)."""
    browser = Browser(BrowserSpec(CHROMIUM, CHROMEDRIVER, capabilities=(("goog:loggingPrefs", {"browser": "ALL"}),)))
    driver = browser.driver
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        driver.get(Path(page).resolve().as_uri())
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        if until:
            top = driver.execute_script(
                "const h = Array.from(document.querySelectorAll('h2')).find(e => e.textContent.includes(arguments[0]));"
                "return h ? h.getBoundingClientRect().top + scrollY : null;", until)
            height = int(top) if top else height
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        figures = [Figure(str(alt), bool(ok), round(x), round(y), round(w), round(h))
                   for alt, ok, x, y, w, h in driver.execute_script(FIGURES_JS)]
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
        errors = [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
    finally:
        browser.close()
    return PageShot(base64.b64decode(shot["data"]), errors, figures, height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="the HTML file")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS px (default 1280)")
    parser.add_argument("--until", help="cut the picture above the <h2> holding this text")
    parser.add_argument("--colours", type=int, help="save with a palette of this many colours (a smaller PNG)")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"screenshot_report: {reason}", file=sys.stderr)
        return 2
    shot = shoot(args.page, args.width, args.until)
    if args.colours:
        from PIL import Image

        Image.open(io.BytesIO(shot.png)).convert("RGB").quantize(args.colours).save(args.png, optimize=True)
    else:
        args.png.write_bytes(shot.png)
    broken = [f.alt for f in shot.figures if not f.decoded]
    print(f"{args.png}: {args.width} x {shot.height} px, {len(shot.figures)} image(s), "
          f"{len(shot.console_errors)} console error(s)")
    for message in shot.console_errors:
        print(f"console error: {message}")
    for alt in broken:
        print(f"image did not decode: {alt}")
    return 1 if shot.console_errors or broken else 0


if __name__ == "__main__":
    sys.exit(main())
