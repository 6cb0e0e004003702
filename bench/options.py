"""Backend options: plain dataclasses whose fields become command-line flags.

A field declared with :func:`option` gets the flag ``--<backend>-<field>`` (underscores become
dashes) unless it names its own ``flag``. Values given as text are converted by the field's
declared type: ``int``, ``float``, ``bool``, ``str``, ``tuple[str, ...]`` (comma separated) or
``Optional`` of those. Numbers must be finite and lie within the bounds the field declares
(``at_least``, ``more_than``, ``at_most``); a tuple with ``choices`` needs at least one item.
Every value is checked when the options are built, before any work, with one line naming the flag.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from bench.errors import UsageError
from bench.validation import Range, shorten, typed_number

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def option(default: Any, help: str, flag: str | None = None, choices: tuple[str, ...] | None = None,
           secret: bool = False, at_least: float | None = None, more_than: float | None = None,
           at_most: float | None = None) -> Any:
    """Declare a backend option with its help text; ``secret`` keeps its value out of reports.

    ``at_least`` / ``more_than`` / ``at_most`` bound a number (checked with the declared type).
    """
    bounds = Range(at_least, more_than, at_most)
    metadata = {"help": help, "flag": flag, "choices": choices, "secret": secret, "bounds": bounds}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a sequence default")
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """Options of a backend that has none."""


def flag_for(backend: str, field: dataclasses.Field) -> str:
    """The command-line flag of one option field."""
    return field.metadata.get("flag") or f"--{backend}-{field.name.replace('_', '-')}"


def _resolved_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def bounds_of(field: dataclasses.Field) -> Range:
    """The range a numeric option field declares (unbounded but finite when it declares none)."""
    return field.metadata.get("bounds") or Range()


def convert(tp: Any, value: Any, where: str, bounds: Range | None = None) -> Any:
    """One option value, given as text or as a typed value (a config file), as the field's type."""
    inner, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in {"", "none"}):
        if optional:
            return None
        raise UsageError(f"{where}: give a value")
    if inner is bool:
        if isinstance(value, bool):
            return value
        low = str(value).strip().lower() if isinstance(value, str) else None
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise UsageError(f"{where}: {shorten(repr(value))} is not valid (expected true or false)")
    if inner in (int, float):
        return typed_number(value, inner, where, bounds)
    if inner is str:
        if not isinstance(value, str):
            raise UsageError(f"{where}: {shorten(repr(value))} is not text")
        if "\x00" in value:
            raise UsageError(f"{where}: the value holds a NUL character")
        return value
    if typing.get_origin(inner) is tuple:
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            raise UsageError(f"{where}: {shorten(repr(value))} is not a comma-separated list")
        if not all(isinstance(item, str) for item in items):
            raise UsageError(f"{where}: {shorten(repr(value))} is not a list of names")
        return tuple(item.strip() for item in items if item.strip())
    raise TypeError(f"unsupported option type {tp!r} for {where}")


def build_options(cls: type, backend: str, values: dict[str, Any]) -> Any:
    """Make an options instance from ``values`` (field name -> text or typed value)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    types_ = _resolved_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise UsageError(f"backend {backend!r} has no option {name!r} (options: {known})")
        field = fields[name]
        where = flag_for(backend, field)
        value = convert(types_[name], value, where, bounds_of(field))
        choices = field.metadata.get("choices")
        if choices:
            items = value if isinstance(value, tuple) else (value,)
            if not items:
                raise UsageError(f"{where}: give at least one of {', '.join(choices)}")
            for item in items:
                if item is not None and item not in choices:
                    raise UsageError(f"{where}: {shorten(repr(item))} is not one of {', '.join(choices)}")
        kwargs[name] = value
    return cls(**kwargs)


def public_options(options: Any) -> dict[str, Any]:
    """The options as a dict for reports, with secret values masked."""
    if not dataclasses.is_dataclass(options):
        return {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if f.metadata.get("secret") and value:
            value = "***"
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out
