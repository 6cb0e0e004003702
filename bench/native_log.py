"""Native libraries' start-up noise (TensorFlow, absl, cuDNN/cuBLAS registration, XLA) kept off the terminal.

TensorFlow's C++ code writes to file descriptor 2 before it reads ``TF_CPP_MIN_LOG_LEVEL`` ("All log
messages before absl::InitializeLog() is called are written to STDERR", "Unable to register cuDNN
factory", ...), so no environment variable stops it. For the life of a command, :class:`NativeLog`
points descriptor 2 at a temporary file and Python's ``sys.stderr`` at the terminal's own
descriptor: digitbench's messages and tracebacks still reach the terminal, whatever native code
(and child processes) write goes to the log, which a command saves into its run folder
(``native.log``) and which is shown when a command fails.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

NATIVE_LOG = "native.log"

QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "2",
}
"""Log levels for what reads them once initialised (TensorFlow, gRPC, glog); set unless already set."""


def quiet_environment() -> None:
    """Set :data:`QUIET_ENVIRONMENT` where the user has not chosen otherwise."""
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


class NativeLog:
    """File descriptor 2 redirected into a temporary file while active; ``sys.stderr`` stays on the terminal.

    It does nothing when ``sys.stderr`` is not the process's own (a test harness capturing it).
    """

    def __init__(self) -> None:
        self._file = None
        self._saved: int | None = None
        self._stderr = None

    @property
    def active(self) -> bool:
        return self._file is not None

    def __enter__(self) -> NativeLog:
        if sys.stderr is not sys.__stderr__ or sys.stderr is None:
            return self
        try:
            sys.stderr.flush()
            if sys.stderr.fileno() != 2:
                return self
        except (AttributeError, OSError, ValueError):
            return self
        self._file = tempfile.TemporaryFile(prefix="digitbench-native-")
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        self._stderr = sys.stderr
        sys.stderr = open(self._saved, "w", encoding=self._stderr.encoding, errors="backslashreplace",
                          buffering=1, closefd=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        sys.stderr = self._stderr
        os.close(self._saved)
        self._file.close()
        self._file = self._saved = self._stderr = None

    def text(self) -> str:
        """What native code has written so far."""
        if not self.active:
            return ""
        return os.pread(self._file.fileno(), os.fstat(self._file.fileno()).st_size, 0).decode("utf-8", "replace")

    def save(self, folder: str | os.PathLike | None) -> Path | None:
        """Write what was logged so far to ``folder/native.log``; the path, or ``None`` when there was nothing."""
        text = self.text()
        if not text or folder is None or not Path(folder).is_dir():
            return None
        path = Path(folder) / NATIVE_LOG
        path.write_text(text, encoding="utf-8")
        return path

    def tail(self, lines: int = 20) -> list[str]:
        """The last ``lines`` lines logged."""
        return self.text().splitlines()[-lines:]
