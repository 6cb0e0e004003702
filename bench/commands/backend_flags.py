"""Command-line flags generated from every registered backend's options dataclass."""
from __future__ import annotations

import argparse
import dataclasses
from collections import defaultdict
from typing import Any

from bench.options import bounds_of, flag_for
from bench.registry import registered
from bench.validation import Range


@dataclasses.dataclass
class BackendFlags:
    """Which backend option each generated flag feeds (one flag may feed several backends)."""

    targets: dict[str, list[tuple[str, str]]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    broken: dict[str, str] = dataclasses.field(default_factory=dict)

    def values(self, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
        """Per backend, the options given on the command line (as text)."""
        chosen: dict[str, dict[str, Any]] = defaultdict(dict)
        for dest, targets in self.targets.items():
            value = getattr(args, dest, None)
            if value is None:
                continue
            for backend, field in targets:
                chosen[backend][field] = value
        return dict(chosen)


def add_backend_flags(parser: argparse.ArgumentParser) -> BackendFlags:
    """Add a group of flags per registered backend; plugins that fail to import are noted."""
    flags = BackendFlags()
    seen: dict[str, str] = {}
    for name, entry in registered().items():
        try:
            cls = entry.load()
        except Exception as exc:
            flags.broken[name] = str(exc)
            continue
        if not dataclasses.is_dataclass(cls.Options):
            continue
        fields = dataclasses.fields(cls.Options)
        if not fields:
            continue
        group = parser.add_argument_group(f"{name} backend options")
        for field in fields:
            flag = flag_for(name, field)
            dest = "opt_" + flag.lstrip("-").replace("-", "_")
            if flag not in seen:
                help_text = field.metadata.get("help", "")
                choices = field.metadata.get("choices")
                if choices:
                    help_text += f" ({'|'.join(choices)})"
                if bounds_of(field) != Range():
                    help_text += f" ({bounds_of(field).describe()})"
                default = field.default if field.default is not dataclasses.MISSING else None
                if isinstance(default, tuple):
                    default = ",".join(default)
                group.add_argument(flag, dest=dest, default=None, metavar=field.name.upper(),
                                   help=f"{help_text} [default: {default}]")
                seen[flag] = dest
            flags.targets[seen[flag]].append((name, field.name))
    return flags
