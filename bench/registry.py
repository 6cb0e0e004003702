"""Finds backends through the ``digitbench.backends`` entry-point group (ours and third parties')."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from bench.backend import Backend
from bench.errors import UsageError
from bench.options import build_options, flag_for

GROUP = "digitbench.backends"


@dataclass(frozen=True)
class Registered:
    """A backend found in the entry-point group, not yet imported."""

    name: str
    target: str
    distribution: str
    entry_point: EntryPoint

    def load(self) -> type[Backend]:
        """Import the backend class; a broken plugin is one clear line."""
        try:
            cls = self.entry_point.load()
        except Exception as exc:
            raise UsageError(f"backend {self.name!r} ({self.target}, from {self.distribution}) failed to import: "
                             f"{type(exc).__name__}: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise UsageError(f"backend {self.name!r} ({self.target}) is not a bench.backend.Backend subclass")
        return cls


def registered() -> dict[str, Registered]:
    """Every backend declared in the group, by name."""
    found: dict[str, Registered] = {}
    for ep in entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        found.setdefault(ep.name, Registered(ep.name, ep.value, dist, ep))
    return dict(sorted(found.items()))


def lookup(name: str) -> Registered:
    """The registered backend called ``name``, or a UsageError that suggests close names."""
    found = registered()
    if name in found:
        return found[name]
    close = difflib.get_close_matches(name, list(found), n=2)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    available = ", ".join(found) or "none (is digitbench installed? run `pip install -e .`)"
    raise UsageError(f"--backends: unknown backend {name!r}.{hint} Available: {available}")


def declared_packages() -> tuple[str, ...]:
    """The distributions every importable registered backend declares (``Backend.packages``), once each."""
    found: dict[str, None] = {}
    for entry in registered().values():
        try:
            cls = entry.load()
        except UsageError:
            continue
        found.update(dict.fromkeys(cls.packages))
    return tuple(found)
def check_unselected_options(given: dict[str, dict[str, Any]], selected: set[str]) -> list[str]:
    """Check the options given for backends a run leaves out, and say that they are ignored.

    A bad value is still an error (so a typo does not wait for the day the backend is selected);
    a flag that also feeds a selected backend is not reported.
    """
    used: set[str] = set()
    for name in selected:
        used.update(flag_for(name, f) for f in dataclasses.fields(lookup(name).load().Options))
    ignored: dict[str, str] = {}
    for name, values in given.items():
        if name in selected or not values:
            continue
        if name not in registered():
            raise UsageError(f"options given for {name!r}, which is not a registered backend (see `bench backends`)")
        cls = lookup(name).load()
        build_options(cls.Options, name, values)
        fields = {f.name: f for f in dataclasses.fields(cls.Options)}
        for field in values:
            flag = flag_for(name, fields[field])
            if flag not in used:
                ignored.setdefault(flag, name)
    return [f"{flag}: ignored, this run does not include the {name} backend" for flag, name in ignored.items()]
