"""What produced a run: software versions, machine, and the digitbench commit."""
from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench import __version__
from bench.results.metadata import Environment

PACKAGES = ("digitbench", "numpy", "pillow", "pandas", "rich", "h5py")
"""The distributions every run depends on; each backend adds its own (``Backend.packages``)."""
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages that matter to results (None when absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU model name as the OS reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(root: Path = PROJECT_ROOT) -> dict[str, object]:
    """The commit of the checkout digitbench runs from, and whether it has local changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def machine_id() -> str:
    """A stable, anonymous id of this machine (hash of host name, CPU model and CPU count)."""
    raw = f"{socket.gethostname()}|{cpu_model()}|{os.cpu_count()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def describe_environment(packages: tuple[str, ...] = PACKAGES) -> Environment:
    """Everything needed to judge whether two runs are comparable; ``packages`` are the
    distributions whose versions matter."""
    git = git_state()
    return Environment(
        version=__version__, commit=git["commit"], dirty=git["dirty"], python=sys.version.split()[0],
        python_implementation=platform.python_implementation(), packages=package_versions(packages),
        os=platform.platform(), cpu_model=cpu_model(), cpu_count=os.cpu_count(), machine_id=machine_id(),
        load_average=tuple(round(v, 2) for v in os.getloadavg()) if hasattr(os, "getloadavg") else None)
