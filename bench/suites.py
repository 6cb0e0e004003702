"""Nightly suites: named benchmark configurations in ``bench.toml`` or ``pyproject.toml``.

Configuration lives in ``bench.toml`` (top level) or in ``pyproject.toml`` under
``[tool.digitbench]``, found in the current folder or the nearest parent::

    [tool.digitbench.nightly]
    default = "smoke"                        # the suite run without --suite

    [tool.digitbench.suites.smoke]
    backends = ["oracle"]
    dataset = "synthetic"                    # a folder, a name, or "synthetic"
    limit = 60
    warmup = 3
    repeats = 3
    gallery = 6                              # worst photos shown per backend row

    [tool.digitbench.suites.smoke.options.oracle]
    delay_ms = 2

    [tool.digitbench.compare]                # thresholds, see bench.compare.Thresholds
    latency = 0.10
    accuracy = 0.01
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.compare import Thresholds
from bench.errors import UsageError
from bench.runner import RunConfig
from bench.validation import Range, folder_name, typed_number

BENCH_TOML = "bench.toml"
PYPROJECT = "pyproject.toml"
SUITE_KEYS = ("backends", "dataset", "limit", "warmup", "repeats", "options", "gallery", "description")


@dataclass(frozen=True)
class Suite:
    """A named benchmark configuration run every night."""

    name: str
    backends: tuple[str, ...]
    dataset: str | None = None
    limit: int | None = None
    warmup: int = 3
    repeats: int = 1
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    gallery: int = 6
    description: str = ""

    def run_config(self, out: Path) -> RunConfig:
        """The :class:`bench.runner.RunConfig` of this suite, writing to ``out``."""
        return RunConfig(backends=self.backends, dataset=self.dataset, limit=self.limit, out=out,
                         warmup=self.warmup, repeats=self.repeats, backend_options=self.options,
                         label=f"nightly:{self.name}")


@dataclass
class Config:
    """The suites, the default suite and the compare thresholds, with the file they came from."""

    source: Path | None = None
    suites: dict[str, Suite] = field(default_factory=dict)
    default_suite: str | None = None
    compare: dict[str, Any] = field(default_factory=dict)

    @property
    def default_name(self) -> str | None:
        """The suite run without ``--suite``: the configured default, else the only suite."""
        return self.default_suite or (next(iter(self.suites)) if len(self.suites) == 1 else None)

    def suite(self, name: str | None) -> Suite:
        """The suite called ``name`` (or the default one), or a UsageError listing the suites."""
        if not self.suites:
            where = self.source or f"{BENCH_TOML} or {PYPROJECT} [tool.digitbench]"
            raise UsageError(f"{where}: no suites defined; add a [tool.digitbench.suites.NAME] table with "
                             "backends = [...] (see `bench nightly --help`)")
        name = name or self.default_name
        if name is None:
            raise UsageError(f"--suite: several suites ({', '.join(self.suites)}) and no "
                             "[tool.digitbench.nightly] default; name one")
        if name not in self.suites:
            raise UsageError(f"--suite {name}: not defined in {self.source}; suites: {', '.join(self.suites)}")
        return self.suites[name]


def _option_value(value: Any) -> Any:
    return ",".join(str(v) for v in value) if isinstance(value, list) else value


def _suite(name: str, raw: dict[str, Any], source: Path) -> Suite:
    where = f"{source} [suites.{name}]"
    unknown = set(raw) - set(SUITE_KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(SUITE_KEYS)}")
    backends = raw.get("backends")
    if isinstance(backends, str):
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    if not backends:
        raise UsageError(f"{where}: give backends = [\"name\", ...]")
    options = {b: {k: _option_value(v) for k, v in opts.items()} for b, opts in (raw.get("options") or {}).items()}
    dataset = raw.get("dataset")
    if dataset and (source.parent / dataset).exists():
        dataset = str((source.parent / dataset).resolve())
    folder_name(name, f"{source} [suites.{name!r}]: the suite name")
    limit = raw.get("limit")
    numbers = {key: typed_number(raw.get(key, default), int, f"{where} {key}", Range(at_least=low))
               for key, default, low in (("warmup", 3, 0), ("repeats", 1, 1), ("gallery", 6, 0))}
    return Suite(name=name, backends=tuple(backends), dataset=dataset,
                 limit=None if limit is None else typed_number(limit, int, f"{where} limit", Range(at_least=1)),
                 options=options, description=str(raw.get("description", "")), **numbers)


def parse_config(table: dict[str, Any], source: Path) -> Config:
    """A :class:`Config` from the ``[tool.digitbench]`` table (or a whole ``bench.toml``)."""
    suites = {name: _suite(name, raw, source) for name, raw in (table.get("suites") or {}).items()}
    default = (table.get("nightly") or {}).get("default")
    if default is not None and default not in suites:
        raise UsageError(f"{source}: nightly default {default!r} is not a suite; suites: {', '.join(suites) or 'none'}")
    compare = dict(table.get("compare") or {})
    Thresholds.from_mapping(compare)
    return Config(source, suites, default, compare)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}); fix the file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def load_config(path: str | Path | None = None, required: bool = True, start: Path | None = None) -> Config:
    """The configuration from ``path``, or from the nearest ``bench.toml`` / ``pyproject.toml``.

    With ``required=False`` an absent configuration gives an empty :class:`Config`.
    """
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise UsageError(f"--config {path}: no such file")
        data = _read_toml(path)
        return parse_config(data.get("tool", {}).get("digitbench", {}) if path.name == PYPROJECT else data, path)
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / BENCH_TOML).is_file():
            return parse_config(_read_toml(candidate / BENCH_TOML), candidate / BENCH_TOML)
        if (candidate / PYPROJECT).is_file():
            table = _read_toml(candidate / PYPROJECT).get("tool", {}).get("digitbench")
            if table is not None:
                return parse_config(table, candidate / PYPROJECT)
    if required:
        raise UsageError(f"no {BENCH_TOML} or {PYPROJECT} with [tool.digitbench] found from {folder}; "
                         "add one with a suite or pass --config PATH")
    return Config()
