"""The HTTP server of the page: the page's own files, the TF.js bundles, one model, and photos.

It serves only what it is given: a fixed set of URL prefixes, each mapped to one folder (paths
that leave the folder are refused), plus photos held in memory for the current batch. It binds
to one address on a free port and runs in a daemon thread until :meth:`PageServer.close`.
"""
from __future__ import annotations

import functools
import gzip
import mimetypes
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

WEB_DIR = Path(__file__).resolve().parent / "web"
NODE_MODULES = WEB_DIR / "node_modules"
TFJS_DIST = NODE_MODULES / "@tensorflow" / "tfjs" / "dist"
TFJS_WASM_DIST = NODE_MODULES / "@tensorflow" / "tfjs-backend-wasm" / "dist"
REQUIRED_FILES = (TFJS_DIST / "tf.min.js", TFJS_WASM_DIST / "tf-backend-wasm.min.js",
                  TFJS_WASM_DIST / "tfjs-backend-wasm-simd.wasm", TFJS_WASM_DIST / "tfjs-backend-wasm.wasm")
CONTENT_TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".json": "application/json",
                 ".bin": "application/octet-stream", ".html": "text/html; charset=utf-8"}
PAGE_FILES = ("index.html", "bench.js", "letterbox.js")
COMPRESSED = (".json", ".js", ".html")
"""Sent gzip-compressed when the browser accepts it, as static hosts do; shards and wasm are sent as they are."""


def missing_page_files() -> list[Path]:
    """Files the page needs that set-up has not installed (``npm ci`` in ``backends/tfjs/web``)."""
    return [p for p in REQUIRED_FILES if not p.is_file()]


@dataclass
class Routes:
    """URL prefix -> folder, and the in-memory photos by name."""

    folders: dict[str, Path]
    isolated: bool = False
    photos: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, path: str) -> Path | None:
        if path in ("/", "/index.html"):
            return WEB_DIR / "index.html"
        if path.startswith("/page/") and path.removeprefix("/page/") in PAGE_FILES:
            return WEB_DIR / path.removeprefix("/page/")
        for prefix, folder in self.folders.items():
            if path.startswith(prefix):
                candidate = (folder / path.removeprefix(prefix)).resolve()
                if candidate.is_relative_to(folder.resolve()) and candidate.is_file():
                    return candidate
        return None


@functools.lru_cache(maxsize=64)
def _gzipped(path: Path, mtime_ns: int, size: int) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)


def _handler(routes: Routes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "digitbench-page"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, body: bytes, content_type: str, cache: str, encoding: str | None = None) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            if encoding:
                self.send_header("Content-Encoding", encoding)
                self.send_header("Vary", "Accept-Encoding")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            if routes.isolated:
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path.startswith("/photos/"):
                with routes.lock:
                    body = routes.photos.get(path.removeprefix("/photos/"))
                if body is not None:
                    return self._send(body, "application/octet-stream", "no-store")
            else:
                found = routes.resolve(path)
                if found is not None:
                    content_type = CONTENT_TYPES.get(found.suffix) or mimetypes.guess_type(found.name)[0]
                    stat = found.stat()
                    if found.suffix in COMPRESSED and "gzip" in self.headers.get("Accept-Encoding", ""):
                        body, encoding = _gzipped(found, stat.st_mtime_ns, stat.st_size), "gzip"
                    else:
                        body, encoding = found.read_bytes(), None
                    return self._send(body, content_type or "application/octet-stream", "public, max-age=86400",
                                      encoding)
            self.send_error(HTTPStatus.NOT_FOUND)

        do_HEAD = do_GET

    return Handler


class PageServer:
    """Serves the page, TF.js, one model folder and the photos of the current batch.

    ``isolated`` adds the COOP/COEP headers that make the page cross-origin isolated, which
    lets the wasm backend use threads (SharedArrayBuffer) and sharpens ``performance.now()``.
    ``folders`` serves more URL prefixes (another page and its libraries: ``backends.webpage``).
    """

    def __init__(self, model_folder: Path, host: str = "127.0.0.1", isolated: bool = False,
                 folders: dict[str, Path] | None = None) -> None:
        self.routes = Routes({"/tfjs/": TFJS_DIST, "/tfjs-wasm/": TFJS_WASM_DIST, "/model/": Path(model_folder),
                              **(folders or {})}, isolated)
        self._server = ThreadingHTTPServer((host, 0), _handler(self.routes))
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="tfjs-page-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def put_photos(self, photos: dict[str, bytes]) -> None:
        """Make these photos (raw RGB bytes by name) fetchable under ``/photos/<name>``, replacing the last ones."""
        with self.routes.lock:
            self.routes.photos = dict(photos)

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
