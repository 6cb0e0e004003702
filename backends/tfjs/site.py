"""The files of the tfjs benchmark page, as a site would serve them: page, TF.js library, one model.

``full`` is the union TF.js bundle a page gets from ``@tensorflow/tfjs`` (``tf.min.js``, plus
``tf-backend-wasm.min.js`` for wasm); ``minimal`` is ``tfjs-core`` + ``tfjs-converter`` + the
chosen backend only, one script built at set-up by ``web/build.mjs`` (esbuild). The wasm backend
also fetches its ``.wasm`` binary (plain, SIMD or threaded SIMD, as the browser supports).
"""
from __future__ import annotations

import html
from pathlib import Path

from backends.tfjs.model_files import TfjsModel
from backends.tfjs.server import Served

WEB_DIR = Path(__file__).resolve().parent / "web"
NODE_MODULES = WEB_DIR / "node_modules"
TFJS_DIST = NODE_MODULES / "@tensorflow" / "tfjs" / "dist"
TFJS_WASM_DIST = NODE_MODULES / "@tensorflow" / "tfjs-backend-wasm" / "dist"
MINIMAL_DIR = WEB_DIR / "build"
BUNDLES = ("full", "minimal")
IMAGE_PATHS = ("page", "exact")
"""How a photo reaches the model: the page's own decode and letterbox, or Python's exact pixels."""
WASM_BINARIES = ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm")
PAGE_SCRIPTS = ("letterbox.js", "bench.js")
LIBRARY_PREFIX = "/tfjs/"
MODEL_PREFIX = "/model/"


def library_scripts(bundle: str, backend: str) -> dict[str, Path]:
    """URL path -> file of the TF.js scripts a page with this bundle and backend loads."""
    if bundle == "minimal":
        return {f"{LIBRARY_PREFIX}tfjs-minimal-{backend}.min.js": MINIMAL_DIR / f"tfjs-minimal-{backend}.min.js"}
    scripts = {f"{LIBRARY_PREFIX}tf.min.js": TFJS_DIST / "tf.min.js"}
    if backend == "wasm":
        scripts[f"{LIBRARY_PREFIX}tf-backend-wasm.min.js"] = TFJS_WASM_DIST / "tf-backend-wasm.min.js"
    return scripts


def library_files(bundle: str, backend: str) -> dict[str, Path]:
    """The scripts plus, for wasm, the binaries the backend may fetch."""
    files = library_scripts(bundle, backend)
    if backend == "wasm":
        files.update({f"{LIBRARY_PREFIX}{name}": TFJS_WASM_DIST / name for name in WASM_BINARIES})
    return files


def missing_page_files(bundle: str = "full", backend: str = "wasm") -> list[Path]:
    """Files the page needs that set-up has not installed (``npm ci`` and ``node build.mjs`` in web/)."""
    needed = [*library_files(bundle, backend).values(), *(WEB_DIR / name for name in PAGE_SCRIPTS)]
    return [path for path in needed if not path.is_file()]


def index_html(scripts: list[str]) -> bytes:
    """The page: the library scripts, then the page's own, all blocking in ``<head>`` as a simple site has them."""
    tags = "\n".join(f'<script src="{html.escape(src)}"></script>' for src in scripts)
    return (WEB_DIR / "index.html").read_text().replace("<!-- scripts -->", tags).encode()


def site_files(bundle: str, backend: str, model: TfjsModel) -> dict[str, Path | bytes | Served]:
    """Every URL the page may request, and nothing else: index, page scripts, library, the model's own files."""
    library = library_files(bundle, backend)
    scripts = [*library_scripts(bundle, backend), *(f"/page/{name}" for name in PAGE_SCRIPTS)]
    files: dict[str, Path | bytes | Served] = {"/": Served(index_html(scripts), cache="no-cache", text=True)}
    files.update(library)
    files.update({f"/page/{name}": WEB_DIR / name for name in PAGE_SCRIPTS})
    files[f"{MODEL_PREFIX}model.json"] = model.model_json
    files.update({f"{MODEL_PREFIX}{shard}": model.folder / shard for shard in model.shards})
    return files


def library_paths(files: dict) -> set[str]:
    """The URL paths that make up the library part of a first visit: the page and TF.js."""
    return {path for path in files if not path.startswith(MODEL_PREFIX)}
