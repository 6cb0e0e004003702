"""The exceptions digitbench raises on purpose; each message is one line naming what to fix."""


def first_line(error: object, default: str = "unknown error") -> str:
    """The first non-empty line of an error or message, stripped; ``default`` when there is none."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else default


class BenchError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code = 1


class UsageError(BenchError):
    """A bad option or argument, found before any work starts (exit 2)."""

    exit_code = 2


class DatasetError(BenchError):
    """A dataset that cannot be read at all (a bad single photo is a record, not this)."""

    exit_code = 2


class BackendUnavailable(BenchError):
    """A backend that cannot run on this machine; the message says why and how to fix it."""

    exit_code = 2


class PhotoError(BenchError):
    """One photo that cannot be used (missing, corrupt, too large); recorded on that photo."""
