"""Backend options: plain dataclasses whose fields become command-line flags.

A field declared with :func:`option` gets the flag ``--<backend>-<field>`` (underscores become
dashes) unless it names its own ``flag``. Values given as text are converted by the field's
declared type: ``int``, ``float``, ``bool``, ``str``, ``tuple[str, ...]`` (comma separated) or
``Optional`` of those.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from bench.errors import UsageError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def option(default: Any, help: str, flag: str | None = None, choices: tuple[str, ...] | None = None,
           secret: bool = False) -> Any:
    """Declare a backend option with its help text; ``secret`` keeps its value out of reports."""
    metadata = {"help": help, "flag": flag, "choices": choices, "secret": secret}
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


def convert(tp: Any, text: str, where: str) -> Any:
    """Convert one option value given as text to the field's type."""
    inner, optional = _strip_optional(tp)
    if optional and text.strip().lower() in {"", "none"}:
        return None
    try:
        if inner is bool:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError("expected true or false")
        if inner in (int, float, str):
            return inner(text)
        if typing.get_origin(inner) is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise UsageError(f"{where}: {text!r} is not valid ({exc})") from None
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
        if isinstance(value, str):
            value = convert(types_[name], value, where)
        choices = field.metadata.get("choices")
        if choices:
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                if item is not None and item not in choices:
                    raise UsageError(f"{where}: {item!r} is not one of {', '.join(choices)}")
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
