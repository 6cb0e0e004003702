"""`bench datasets fetch` against a local HTTP server holding an archive in the official layout."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.dataset import load_dataset
from bench.digitstruct import write_digitstruct
from bench.errors import DatasetError
from bench.fetch import SplitSource, fetch_split
from tests.conftest import png_bytes


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path):
    """A local server whose test.tar.gz holds test/1.png, test/2.png and test/digitStruct.mat."""
    root = tmp_path / "mirror"
    root.mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    write_digitstruct(staging / "digitStruct.mat", [
        {"image": "1.png", "boxes": [{"label": 1, "left": 2.0, "top": 3.0, "width": 8.0, "height": 14.0},
                                     {"label": 0, "left": 11.0, "top": 3.0, "width": 8.0, "height": 14.0}]},
        {"image": "2.png", "boxes": [{"label": 7, "left": 5.0, "top": 2.0, "width": 9.0, "height": 15.0}]}])
    with tarfile.open(root / "test.tar.gz", "w:gz") as archive:
        archive.add(staging / "digitStruct.mat", "test/digitStruct.mat")
        for name in ("1.png", "2.png"):
            data = png_bytes(np.full((20, 30, 3), 120, np.uint8))
            info = tarfile.TarInfo(f"test/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        evil = tarfile.TarInfo("../evil.png")
        evil.size = 1
        archive.addfile(evil, io.BytesIO(b"x"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root / "test.tar.gz"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_downloads_extracts_and_converts(mirror, tmp_path: Path, monkeypatch):
    base, archive = mirror
    monkeypatch.setenv("DIGITBENCH_DATA", str(tmp_path / "data"))
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    source = SplitSource("svhn", "test", base + "test.tar.gz", images=2, sha256=sha)
    folder = fetch_split(source)
    lines = [json.loads(line) for line in (folder / "annotations.jsonl").read_text().splitlines()]
    assert lines[0]["image"] == "images/1.png" and lines[0]["label"] == "10" and lines[0]["width"] == 30
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "data" / "evil.png").exists()
    dataset = load_dataset("svhn-test")
    assert [p.label for p in dataset.photos] == ["10", "7"]
    assert json.loads((folder / "SOURCE.json").read_text())["sha256"] == sha


def test_fetch_refuses_a_checksum_mismatch(mirror, tmp_path: Path):
    base, _ = mirror
    source = SplitSource("svhn", "test", base + "test.tar.gz", images=2, sha256="0" * 64)
    with pytest.raises(DatasetError, match="does not match the expected"):
        fetch_split(source, tmp_path / "d")


def test_fetch_refuses_a_wrong_photo_count(mirror, tmp_path: Path):
    base, _ = mirror
    with pytest.raises(DatasetError, match="2 photos, expected 13068"):
        fetch_split(SplitSource("svhn", "test", base + "test.tar.gz", images=13068, sha256=""), tmp_path / "d")


def test_fetch_command_reports_an_unreachable_server_in_one_line(tmp_path: Path, capsys):
    code = main(["datasets", "fetch", "svhn", "--split", "test", "--base-url", "http://127.0.0.1:9/",
                 "--dest", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "download failed" in err and err.count("\n") == 1


def test_fetch_command_uses_the_descriptor_counts(mirror, tmp_path: Path, capsys):
    base, _ = mirror
    code = main(["datasets", "fetch", "svhn", "--split", "test", "--base-url", base, "--dest", str(tmp_path)])
    assert code == 2
    assert "expected 13068" in capsys.readouterr().err
