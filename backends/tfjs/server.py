"""A local HTTP server for a benchmark page: exactly the files it is given, and photos in memory.

Reusable by any browser backend: give it ``{url path: file on disk or bytes}``; nothing else is
ever served (no folder is mapped, so no path can leave it). It binds to one address on a free
port, answers only requests whose ``Host`` header names that address (a page elsewhere that
rebinds a DNS name to it gets 421), sends text assets compressed as a static host does
(``compression``: ``none``, ``gzip`` or ``br``), counts the bytes it sends per path, and runs
in a daemon thread until :meth:`PageServer.close`. Odd request paths (``%00``, ``..``, absolute
URLs, over-long names) are a 404 or 400, never an exception in the server.
"""
from __future__ import annotations

import functools
import gzip
import ipaddress
import mimetypes
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

CONTENT_TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".json": "application/json",
                 ".bin": "application/octet-stream", ".html": "text/html; charset=utf-8"}
TEXT_SUFFIXES = (".json", ".js", ".html", ".css", ".txt")
"""Sent compressed when the browser accepts it, as static hosts do; binaries (shards, wasm) go as they are."""
COMPRESSIONS = ("none", "gzip", "br")
MAX_PATH = 2048


def compress(body: bytes, encoding: str) -> bytes:
    """``body`` gzip- or brotli-compressed (the settings static hosts commonly use)."""
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    import brotli

    return brotli.compress(body, quality=11)


@functools.lru_cache(maxsize=128)
def _compressed_file(path: Path, mtime_ns: int, size: int, encoding: str) -> bytes:
    return compress(path.read_bytes(), encoding)


@functools.lru_cache(maxsize=32)
def _compressed_bytes(body: bytes, encoding: str) -> bytes:
    return compress(body, encoding)


@dataclass(frozen=True)
class Served:
    """What one URL path serves: a file or bytes, its cache policy, and whether it is text (compressed)."""

    source: Path | bytes
    cache: str = "public, max-age=86400"
    text: bool | None = None
    """``None``: text when the file's suffix is one of :data:`TEXT_SUFFIXES`."""

    @property
    def suffix(self) -> str:
        return self.source.suffix if isinstance(self.source, Path) else ""

    @property
    def is_text(self) -> bool:
        return self.text if self.text is not None else self.suffix in TEXT_SUFFIXES

    def body(self, encoding: str | None) -> bytes:
        if isinstance(self.source, bytes):
            return _compressed_bytes(self.source, encoding) if encoding else self.source
        if encoding:
            stat = self.source.stat()
            return _compressed_file(self.source, stat.st_mtime_ns, stat.st_size, encoding)
        return self.source.read_bytes()


def as_served(value: Path | bytes | Served) -> Served:
    return value if isinstance(value, Served) else Served(value)


@dataclass
class Routes:
    """URL path -> what it serves, the in-memory photos, and the bytes sent so far per path."""

    files: dict[str, Served]
    isolated: bool = False
    compression: str = "gzip"
    allowed_hosts: frozenset[str] = frozenset()
    photos: dict[str, bytes] = field(default_factory=dict)
    sent: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def folder_files(prefix: str, folder: Path, skip: tuple[str, ...] = ("node_modules",)) -> dict[str, Path]:
    """Every file under ``folder`` at ``prefix`` + its relative path, for a page that serves a folder
    as it is; folders named in ``skip`` below it (a page's own ``node_modules``) are left out."""
    folder = Path(folder)
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part in skip for part in relative.parts[:-1]):
            found[prefix + relative.as_posix()] = path
    return found


def clean_path(raw: str) -> str | None:
    """The URL path of a request target, or ``None`` when it is not one a page would ask for."""
    if not raw or len(raw) > MAX_PATH:
        return None
    path = unquote(urlsplit(raw).path, errors="replace")
    if not path.startswith("/") or "\x00" in path or "\\" in path or "\ufffd" in path:
        return None
    if any(part in (".", "..") for part in path.split("/")):
        return None
    return path


def _handler(routes: Routes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "digitbench-page"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _headers(self, content_type: str, length: int, cache: str, encoding: str | None) -> None:
            self.send_header("Content-Type", content_type)
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Vary", "Accept-Encoding")
            self.send_header("Content-Length", str(length))
            self.send_header("Cache-Control", cache)
            if routes.isolated:
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.end_headers()

        def _send(self, path: str, body: bytes, content_type: str, cache: str, encoding: str | None = None) -> None:
            self.send_response(HTTPStatus.OK)
            self._headers(content_type, len(body), cache, encoding)
            if self.command == "GET":
                self.wfile.write(body)
                with routes.lock:
                    routes.sent[path] += len(body)

        def _encoding(self, served: Served) -> str | None:
            if routes.compression == "none" or not served.is_text:
                return None
            accepted = {part.split(";")[0].strip() for part in self.headers.get("Accept-Encoding", "").split(",")}
            return routes.compression if routes.compression in accepted else None

        def do_GET(self) -> None:
            authority = urlsplit(self.path).netloc if "://" in self.path[:16] else ""
            for host in filter(None, (self.headers.get("Host", "-"), authority)):
                if host.lower() not in routes.allowed_hosts:
                    return self.send_error(HTTPStatus.MISDIRECTED_REQUEST, "unknown Host")
            path = clean_path(self.path)
            if path is None:
                return self.send_error(HTTPStatus.BAD_REQUEST)
            if path.startswith("/photos/"):
                with routes.lock:
                    body = routes.photos.get(path.removeprefix("/photos/"))
                if body is not None:
                    return self._send(path, body, "application/octet-stream", "no-store")
                return self.send_error(HTTPStatus.NOT_FOUND)
            served = routes.files.get(path)
            if served is None:
                return self.send_error(HTTPStatus.NOT_FOUND)
            try:
                encoding = self._encoding(served)
                body = served.body(encoding)
            except OSError:
                return self.send_error(HTTPStatus.NOT_FOUND)
            content_type = (CONTENT_TYPES.get(served.suffix) or mimetypes.guess_type(path)[0]
                            or ("text/html; charset=utf-8" if path.endswith("/") else "application/octet-stream"))
            return self._send(path, body, content_type, served.cache, encoding)

        do_HEAD = do_GET

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: Routes

    def handle_error(self, request, client_address) -> None:
        import sys

        kind, value = sys.exc_info()[:2]
        if isinstance(value, (ConnectionError, TimeoutError)):
            return
        self.routes.errors.append(f"{kind.__name__ if kind else 'error'}: {value}")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class PageServer:
    """Serves the given files, and the photos of the current batch under ``/photos/<name>``.

    ``files`` maps URL paths (``/``, ``/model/model.json``, ...) to a file, bytes, or a
    :class:`Served`. ``isolated`` adds the COOP/COEP headers that make the page cross-origin
    isolated (wasm threads, a sharper ``performance.now()``).
    """

    def __init__(self, files: Mapping[str, Path | bytes | Served], host: str = "127.0.0.1", isolated: bool = False,
                 compression: str = "gzip") -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression {compression!r} is not one of {', '.join(COMPRESSIONS)}")
        self.routes = Routes({path: as_served(value) for path, value in files.items()}, isolated, compression)
        self._server = _Server((host, 0), _handler(self.routes))
        self._server.routes = self.routes
        self.host = host
        self.port = self._server.server_address[1]
        netloc = f"[{host}]" if ":" in host else host
        hosts = {f"{netloc}:{self.port}"}
        if _is_loopback(host):
            hosts |= {f"localhost:{self.port}", f"127.0.0.1:{self.port}", f"[::1]:{self.port}"}
        self.routes.allowed_hosts = frozenset(h.lower() for h in hosts)
        self._precompress()
        self._thread = threading.Thread(target=self._server.serve_forever, name="page-server", daemon=True)
        self._thread.start()

    def _precompress(self) -> None:
        """Compress the text assets now, as a site does at deploy time, so no request waits for it."""
        if self.routes.compression == "none":
            return
        for served in self.routes.files.values():
            if served.is_text and (isinstance(served.source, bytes) or served.source.is_file()):
                served.body(self.routes.compression)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def put_photos(self, photos: dict[str, bytes]) -> None:
        """Make these photos (bytes by name) fetchable under ``/photos/<name>``, replacing the last ones."""
        with self.routes.lock:
            self.routes.photos = dict(photos)

    def sent_bytes(self, paths: set[str] | None = None) -> int:
        """Body bytes sent so far, for all paths or only ``paths``."""
        with self.routes.lock:
            return sum(n for path, n in self.routes.sent.items() if paths is None or path in paths)

    @property
    def errors(self) -> list[str]:
        """Exceptions the request handler raised (none is expected)."""
        return list(self.routes.errors)

    def close(self) -> None:
        """Stop serving and free the port. Safe to call more than once."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> PageServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
