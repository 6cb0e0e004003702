"""The parts every static HTML report shares: one style sheet, tables, embedded images, the page shell.

Pages are self-contained: images are ``data:`` URIs, there is no script, and a Content Security
Policy in the page forbids scripts and every network request, so a page opens offline and the
browser itself refuses anything that would reach out.
"""
from __future__ import annotations

import base64
import html
import re

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1240px; color: #222; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 6px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; } td.n { text-align: right; white-space: nowrap; }
tr.regression td { background: #fde2e2; } tr.improvement td { background: #e2f6e2; }
tr.unstable td { background: #fff4d6; } tr.differs td { background: #f1ecfb; }
.verdict { font-weight: 600; } .bad { color: #b00020; } .good { color: #1a7f37; }
.banner { padding: 10px 14px; border-radius: 6px; margin: 10px 0; font-size: 15px; }
.banner.bad { background: #fde2e2; } .banner.good { background: #e2f6e2; }
.banner.info { background: #eef2fb; color: #222; } .banner.warn { background: #fff4d6; color: #222; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 6px; font-size: 12px; max-width: 380px; }
.card img { display: block; max-width: 366px; image-rendering: pixelated; }
.card .reading { margin-top: 4px; } .card .reading img { max-width: 240px; }
.muted { color: #666; font-size: 12px; } img.plot { max-width: 100%; display: block; margin: 6px 0; }
code { background: #f4f4f4; padding: 0 3px; border-radius: 3px; }
"""


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, to embed in the page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def plot(png: bytes, alt: str) -> str:
    """An embedded figure."""
    return f"<img class='plot' alt='{html.escape(alt)}' src='{data_uri(png)}'>"


NUMBER = re.compile(r"^[-+]?(\d[\d,]*(\.\d+)?(e[-+]?\d+)?|\.\d+)\s?(%|ms|s|KB|MB|GB|x|pt)?(\s\[.*\])?(\s\(.*\))?$|^-$")
"""A cell that reads as a figure ("12.3", "67.0%", "912.1 KB", "5.2 [4.9, 5.8]", "-"): right-aligned."""


def _cell(text: str) -> str:
    css = " class='n'" if NUMBER.match(text.strip()) else ""
    return f"<td{css}>{html.escape(text)}</td>"


def html_table(rows: list[list[str]], classes: list[str] | None = None) -> str:
    """A table whose first row is the header; ``classes`` gives each body row a CSS class (or '').
    Figures are right-aligned, text left-aligned."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = []
    for index, row in enumerate(rows[1:]):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(map(_cell, row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: list[str]) -> str:
    """A whole static page: the shell, the style sheet, the policy and ``body``'s parts in order."""
    return "\n".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CONTENT_SECURITY_POLICY}\">",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        *body, "</body></html>"])
