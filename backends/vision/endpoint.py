"""Where requests go: the ``--vision-endpoint`` value parsed for each transport."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.errors import UsageError

DEFAULT_HOST = "vision.googleapis.com"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Endpoint:
    """A Vision endpoint: host, port and whether the connection is plain text (``http://``)."""

    host: str = DEFAULT_HOST
    port: int = 443
    plaintext: bool = False

    @classmethod
    def parse(cls, text: str | None) -> Endpoint:
        """``https://eu-vision.googleapis.com``, ``http://127.0.0.1:8080`` or ``host[:port]`` (TLS)."""
        if not text:
            return cls()
        raw = text if "://" in text else f"https://{text}"
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError as exc:
            raise UsageError(f"--vision-endpoint {text!r}: {exc}; give e.g. https://eu-vision.googleapis.com "
                             "or http://127.0.0.1:8080") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise UsageError(f"--vision-endpoint {text!r}: give scheme://host[:port] with scheme http "
                             "(plain text, e.g. an emulator) or https, and no path")
        plaintext = parts.scheme == "http"
        return cls(parts.hostname, port or (80 if plaintext else 443), plaintext)

    @property
    def is_default(self) -> bool:
        return self.host == DEFAULT_HOST and self.port == 443 and not self.plaintext

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def for_transport(self, transport: str) -> str:
        """The ``api_endpoint`` client option: a URL for REST, ``host:port`` for gRPC."""
        if transport == "rest":
            return f"{'http' if self.plaintext else 'https'}://{self.netloc}"
        return self.netloc

    def __str__(self) -> str:
        return self.for_transport("rest")
