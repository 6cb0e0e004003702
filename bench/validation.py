"""Checks of values that come from outside digitbench: options, config files and datasets.

Each check gives one line naming the value and what is allowed, so a bad value is refused
before any work starts (an option) or recorded against the one photo it spoils (a dataset).
"""
from __future__ import annotations

import argparse
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from bench.errors import UsageError


@dataclass(frozen=True)
class Range:
    """Where a number may lie; every bound is optional and a number must always be finite."""

    at_least: float | None = None
    more_than: float | None = None
    at_most: float | None = None

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range (``"must be at least 1"``), or ``None``."""
        if not math.isfinite(value):
            return "must be a finite number"
        if self.at_least is not None and value < self.at_least:
            return f"must be {self.describe()}"
        if self.more_than is not None and value <= self.more_than:
            return f"must be {self.describe()}"
        if self.at_most is not None and value > self.at_most:
            return f"must be {self.describe()}"
        return None

    def describe(self) -> str:
        """``"1 to 16"``, ``"at least 0"``, ``"more than 0 and at most 60"``, ..."""
        low = (f"{self.at_least:g}" if self.at_least is not None else None)
        if low is not None and self.at_most is not None:
            return f"{low} to {self.at_most:g}"
        parts = []
        if low is not None:
            parts.append(f"at least {low}")
        if self.more_than is not None:
            parts.append(f"more than {self.more_than:g}")
        if self.at_most is not None:
            parts.append(f"at most {self.at_most:g}")
        return " and ".join(parts) or "a finite number"


def number_problem(value: Any, kind: type, bounds: Range | None = None) -> tuple[int | float | None, str | None]:
    """``value`` (text or a number) as ``kind`` (int or float) and ``None``, or ``None`` and why not."""
    noun = "a whole number" if kind is int else "a number"
    if isinstance(value, str):
        try:
            number = kind(value.strip())
        except (ValueError, OverflowError):
            return None, f"is not {noun}"
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"is not {noun}"
    elif kind is int and isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return None, f"is not {noun}"
        number = int(value)
    else:
        number = kind(value)
    try:
        problem = (bounds or Range()).problem(float(number))
    except OverflowError:
        problem = f"must be {(bounds or Range()).describe()}"
    return (None, problem) if problem else (number, None)


def typed_number(value: Any, kind: type, where: str, bounds: Range | None = None) -> int | float:
    """``value`` (text or a number) as ``kind`` (int or float), or a UsageError naming ``where``."""
    number, problem = number_problem(value, kind, bounds)
    if problem:
        raise UsageError(f"{where} {shown(value)}: {problem}")
    return number


def shown(value: Any) -> str:
    """A value as a message quotes it: plain text as is, anything odd (spaces, escapes, long) as its repr."""
    if isinstance(value, str) and value and value.isprintable() and " " not in value and len(value) <= 40:
        return value
    return shorten(repr(value))


def number_argument(kind: type = int, at_least: float | None = None, more_than: float | None = None,
                    at_most: float | None = None, parse: Callable[[str], Any] | None = None
                    ) -> Callable[[str], int | float]:
    """An argparse ``type=`` that checks kind and range; argparse names the flag in its error.

    ``parse`` turns the text into a number first (e.g. ``'10%'`` into 0.1) or raises ValueError.
    """
    bounds = Range(at_least, more_than, at_most)

    def check(text: str) -> int | float:
        try:
            value = parse(text) if parse else text
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{shown(text)} {exc}") from None
        number, problem = number_problem(value, kind, bounds)
        if problem:
            raise argparse.ArgumentTypeError(f"{shown(text)} {problem}")
        return number

    check.__name__ = kind.__name__
    return check


DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def report_date(text: str, where: str = "--date") -> str:
    """A calendar date written YYYY-MM-DD (it names a report folder), or a UsageError."""
    if not DATE.match(text or ""):
        raise UsageError(f"{where} {shorten(text)!r}: give a date as YYYY-MM-DD, e.g. 2026-03-01")
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{where} {text}: not a calendar date ({exc})") from None
    return text


SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def folder_name(text: str, where: str) -> str:
    """A name that may become one path component (letters, digits, ``_ . -``; not starting with ``.``)."""
    if not isinstance(text, str) or not SAFE_NAME.match(text) or ".." in text:
        raise UsageError(f"{where} {shorten(repr(text))}: use only letters, digits, '_', '.' and '-' "
                         "(it names a folder), not starting with '.'")
    return text


def text_problem(value: Any, what: str, max_length: int = 1024) -> str | None:
    """Why ``value`` is not usable text from a dataset (not a string, too long, control characters,
    not encodable as UTF-8), or ``None``."""
    if not isinstance(value, str):
        return f"{what} must be a string, not {type(value).__name__}"
    if not value:
        return f"{what} is empty"
    if len(value) > max_length:
        return f"{what} is {len(value)} characters long (at most {max_length})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} {shorten(ascii(value))} is not valid Unicode text"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in value):
        return f"{what} {shorten(ascii(value))} holds control characters"
    return None


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` safe for a terminal: control characters written as escapes (``\\x1b``)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def markup_safe(text: object) -> str:
    """``text`` for rich's console: control characters escaped and ``[`` escaped so it is not markup."""
    from rich.markup import escape

    return escape(printable(text))
