"""Hostile datasets are contained (issue 15, items 4, 5 and 7).

Only regular files inside the dataset folder are read; every value is validated; duplicates and
labels that disagree with their boxes are reported. A bad entry is one line naming the file,
never a traceback, a read outside the folder or a hang.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from bench.dataset import load_dataset
from bench.digitstruct import write_digitstruct
from bench.errors import DatasetError, PhotoError
from bench.runner import RunConfig, run_benchmark
from tests.conftest import png_bytes
from tests.conftest import write_jsonl_dataset as write_flat_dataset

PNG = png_bytes(np.full((20, 40, 3), 200, np.uint8))
BOX = {"label": 1, "left": 2, "top": 2, "width": 8, "height": 12}


def write_jsonl_dataset(root: Path, entries: list, images: dict[str, bytes]) -> Path:
    """As conftest's, with photos in nested folders (names holding '/')."""
    for name in images:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
    return write_flat_dataset(root, entries, images)


def entry(image: str, **extra) -> dict:
    return {"image": image, "label": "1", "width": 40, "height": 20, "boxes": [BOX], **extra}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A valid photo outside every dataset folder: reading it would be a leak."""
    secret = tmp_path / "secret" / "photo.png"
    secret.parent.mkdir()
    secret.write_bytes(PNG)
    return secret


def run_oracle(root: Path, out: Path) -> tuple[dict, list[dict]]:
    run_benchmark(RunConfig(backends=("oracle",), dataset=str(root), out=out, warmup=0, max_error_rate=1.0))
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return json.loads((out / "run.json").read_text()), records


def errors_by_image(dataset) -> dict[str, str]:
    found = {}
    for photo in dataset.photos:
        try:
            photo.load()
        except PhotoError as exc:
            found[photo.image] = str(exc)
    return found


def test_paths_that_leave_the_folder_are_error_records_and_never_read(tmp_path: Path, outside: Path):
    root = write_jsonl_dataset(tmp_path / "d", [
        entry("images/ok.png"),
        entry("../secret/photo.png"),
        entry("images/../../secret/other.png"),
        entry(str(outside)),
        entry("images/link.png"),
    ], {"images/ok.png": PNG})
    (root / "images" / "link.png").symlink_to(outside)
    dataset = load_dataset(root)
    errors = errors_by_image(dataset)
    assert set(errors) == {"../secret/photo.png", "images/../../secret/other.png", str(outside), "images/link.png"}
    assert "leaves the dataset folder" in errors["../secret/photo.png"]
    assert "is absolute" in errors[str(outside)]
    assert "leads outside the dataset folder" in errors["images/link.png"]
    run, records = run_oracle(root, tmp_path / "out")
    by_image = {r["image"]: r for r in records}
    assert by_image["images/ok.png"]["error"] is None
    assert all(by_image[name]["error"] for name in errors)
    assert run["backends"]["oracle"]["errors"] == 4


def test_a_link_inside_the_folder_is_followed(tmp_path: Path):
    root = write_jsonl_dataset(tmp_path / "d", [entry("images/alias.png")], {"images/real.png": PNG})
    (root / "images" / "alias.png").symlink_to(root / "images" / "real.png")
    assert errors_by_image(load_dataset(root)) == {}


def test_a_pipe_or_a_device_is_refused_without_blocking(tmp_path: Path):
    root = write_jsonl_dataset(tmp_path / "d", [entry("images/pipe.png"), entry("images/zero.png"),
                                                entry("images")], {})
    os.mkfifo(root / "images" / "pipe.png")
    (root / "images" / "zero.png").symlink_to("/dev/zero")
    done: dict = {}
    worker = threading.Thread(target=lambda: done.update(errors_by_image(load_dataset(root))), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "reading a pipe blocked"
    assert "a pipe, not a photo file" in done["images/pipe.png"]
    assert "leads outside" in done["images/zero.png"]
    assert "a folder, not a photo file" in done["images"]


def test_a_device_inside_the_folder_is_refused(tmp_path: Path):
    from bench.photos import read_inside

    with pytest.raises(PhotoError, match="a character device, not a photo file"):
        read_inside(Path("/dev"), "zero")


def test_annotations_that_are_a_link_out_are_refused(tmp_path: Path, outside: Path):
    elsewhere = tmp_path / "secret" / "annotations.jsonl"
    elsewhere.write_text(json.dumps(entry("images/a.png")) + "\n")
    root = tmp_path / "d"
    root.mkdir()
    (root / "annotations.jsonl").symlink_to(elsewhere)
    with pytest.raises(DatasetError, match="leads outside the dataset folder"):
        load_dataset(root)


def test_names_inside_digitstruct_cannot_leave_the_folder(tmp_path: Path, outside: Path):
    root = tmp_path / "svhn"
    root.mkdir()
    (root / "1.png").write_bytes(PNG)
    boxes = [{"label": 1, "left": 2.0, "top": 2.0, "width": 8.0, "height": 12.0}]
    write_digitstruct(root / "digitStruct.mat", [{"image": "1.png", "boxes": boxes},
                                                 {"image": "../secret/photo.png", "boxes": boxes},
                                                 {"image": str(outside), "boxes": boxes}])
    errors = errors_by_image(load_dataset(root))
    assert set(errors) == {"../secret/photo.png", str(outside)}


@pytest.mark.parametrize(("line", "message"), [
    ('{"image": "images/a.png", "label": "1", "width": NaN, "boxes": []}', "NaN is not a JSON number"),
    ('{"image": "images/a.png", "label": "1", "width": Infinity}', "Infinity is not a JSON number"),
    ("[" * 100000 + "]" * 100000, "not valid JSON"),
    ('{"image": "images/\\ud800.png", "label": "1"}', "not valid Unicode text"),
    ('{"image": "images/\\u001b[31m.png", "label": "1"}', "control characters"),
    ('{"image": 5, "label": "1"}', "'image' must be a string"),
    ('"just a string"', "not a JSON object"),
])
def test_a_line_with_an_unusable_value_is_skipped_with_one_line(line, message, tmp_path: Path):
    root = write_jsonl_dataset(tmp_path / "d", [entry("images/ok.png"), line], {"images/ok.png": PNG})
    dataset = load_dataset(root)
    assert [p.image for p in dataset.photos] == ["images/ok.png"]
    [problem] = dataset.problems
    assert "annotations.jsonl:2" in problem and message in problem and "\n" not in problem


@pytest.mark.parametrize(("fields", "message"), [
    ({"width": 10**400}, "width 1000"),
    ({"height": -3}, "height -3 is not 1 to 100000"),
    ({"width": 12.5}, "width 12.5 is not a whole number"),
    ({"width": True}, "width must be a number"),
    ({"boxes": [{**BOX, "left": 1e300}]}, "box 1 left"),
    ({"boxes": [{**BOX, "label": 11}]}, "box 1 label 11 is not 0 to 10"),
    ({"boxes": [{**BOX, "label": 1.5}]}, "box 1 label 1.5 is not a whole number"),
    ({"boxes": [{**BOX, "width": "8"}]}, "box 1 width must be a number"),
    ({"boxes": {"label": 1}}, "'boxes' must be a list"),
    ({"boxes": [BOX] * 101}, "at most 100"),
    ({"label": "1a"}, "label 1a is not a number written in digits 0-9"),
    ({"label": "١"}, "is not a number written in digits 0-9"),
    ({"label": 1.0}, "is not a number written in digits"),
])
def test_an_out_of_range_value_makes_its_photo_an_error_record(fields, message, tmp_path: Path):
    root = write_jsonl_dataset(tmp_path / "d", [entry("images/ok.png"), entry("images/bad.png", **fields)],
                               {"images/ok.png": PNG, "images/bad.png": PNG})
    errors = errors_by_image(load_dataset(root))
    assert list(errors) == ["images/bad.png"]
    assert message in errors["images/bad.png"] and "annotations.jsonl:2" in errors["images/bad.png"]


def test_a_bad_value_never_stops_the_run_and_run_json_stays_strict(tmp_path: Path):
    root = write_jsonl_dataset(tmp_path / "d", [
        entry("images/ok.png"), entry("images/nan.png", boxes=[{**BOX, "left": 10**400}]),
        '{"image": "images/x.png", "width": -Infinity}', entry("images/[bold red]markup[/].png"),
    ], {"images/ok.png": PNG, "images/nan.png": PNG, "images/[bold red]markup[/].png": PNG})
    run, records = run_oracle(root, tmp_path / "out")
    assert run["status"] == "complete"
    assert [r["error"] is None for r in records] == [True, False, True]
    def strict(name):
        raise AssertionError(f"{name} written into the run folder")

    json.loads((tmp_path / "out" / "run.json").read_text(), parse_constant=strict)
    for line in (tmp_path / "out" / "truth.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=strict)


def test_markup_in_dataset_values_is_printed_escaped(tmp_path: Path):
    name = "images/[/red][link=file:///etc]x[/link].png"
    root = write_jsonl_dataset(tmp_path / "[red]d", [entry("images/ok.png"), entry(name), entry(name)],
                               {"images/ok.png": PNG, name: PNG})
    done = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--backends", "oracle", "--warmup", "0",
                           "--no-store", "--dataset", str(root), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    assert "[/red][link=file:///etc]x[/link].png" in done.stdout
    assert "[red]d" in done.stdout


def test_duplicate_photos_are_dropped_with_a_note_so_a_perfect_answer_scores_100(tmp_path: Path):
    root = write_jsonl_dataset(tmp_path / "d", [entry("images/a.png"), entry("images/a.png", label="7"),
                                                entry("./images/a.png"), entry("images/b.png")],
                               {"images/a.png": PNG, "images/b.png": PNG})
    dataset = load_dataset(root)
    assert [p.image for p in dataset.photos] == ["images/a.png", "images/b.png"]
    assert len(dataset.problems) == 2 and all("is listed again (first at" in p for p in dataset.problems)
    run, _ = run_oracle(root, tmp_path / "out")
    assert run["backends"]["oracle"]["digit_f1"] == 1.0
    assert run["backends"]["oracle"]["sequence_accuracy"] == 1.0


@pytest.mark.parametrize(("label", "boxes", "message"), [
    ("12", [BOX], "label '12' disagrees with its boxes (they hold '1')"),
    ("7", [BOX], "label '7' disagrees with its boxes"),
    ("3", [], "label '3' has no boxes"),
])
def test_a_label_that_disagrees_with_its_boxes_is_refused(label, boxes, message, tmp_path: Path):
    root = write_jsonl_dataset(tmp_path / "d", [entry("images/ok.png"), entry("images/bad.png", label=label,
                                                                               boxes=boxes)],
                               {"images/ok.png": PNG, "images/bad.png": PNG})
    errors = errors_by_image(load_dataset(root))
    assert list(errors) == ["images/bad.png"] and message in errors["images/bad.png"]


def test_a_label_in_another_order_than_its_boxes_is_accepted(tmp_path: Path):
    boxes = [{**BOX, "label": 2}, {**BOX, "label": 1, "left": 20}]
    root = write_jsonl_dataset(tmp_path / "d", [entry("images/a.png", label="21", boxes=boxes)], {"images/a.png": PNG})
    assert errors_by_image(load_dataset(root)) == {}


def test_bad_values_inside_digitstruct_are_reported_per_entry(tmp_path: Path):
    root = tmp_path / "svhn"
    root.mkdir()
    for name in ("1.png", "2.png", "3.png"):
        (root / name).write_bytes(PNG)
    good = [{"label": 1, "left": 2.0, "top": 2.0, "width": 8.0, "height": 12.0}]
    write_digitstruct(root / "digitStruct.mat", [
        {"image": "1.png", "boxes": good},
        {"image": "2.png", "boxes": [{**good[0], "left": float("nan")}]},
        {"image": "3.png", "boxes": [{**good[0], "label": 12}]},
        {"image": "1.png", "boxes": good},
    ])
    dataset = load_dataset(root)
    assert [p.image for p in dataset.photos] == ["1.png", "2.png", "3.png"]
    errors = errors_by_image(dataset)
    assert "box 1 left nan" in errors["2.png"] and "box 1 label 12" in errors["3.png"]
    assert any("is listed again" in p for p in dataset.problems)


def test_a_digitstruct_name_with_impossible_character_codes_is_skipped(tmp_path: Path):
    import h5py

    root = tmp_path / "svhn"
    root.mkdir()
    (root / "1.png").write_bytes(PNG)
    good = [{"label": 1, "left": 2.0, "top": 2.0, "width": 8.0, "height": 12.0}]
    write_digitstruct(root / "digitStruct.mat", [{"image": "1.png", "boxes": good}, {"image": "xx", "boxes": good}])
    with h5py.File(root / "digitStruct.mat", "r+") as f:
        target = f[f["digitStruct/name"][1, 0]]
        target[...] = np.array([[1e30], [0xD800]])
    dataset = load_dataset(root)
    assert [p.image for p in dataset.photos] == ["1.png"]
    assert "digitStruct.mat entry 2: unreadable (the name holds" in dataset.problems[0]


def test_a_digitstruct_linking_to_another_file_is_refused(tmp_path: Path):
    import h5py

    other = tmp_path / "other.mat"
    write_digitstruct(other, [{"image": "1.png", "boxes": []}])
    root = tmp_path / "svhn"
    root.mkdir()
    with h5py.File(root / "digitStruct.mat", "w") as f:
        f["digitStruct"] = h5py.ExternalLink(str(other), "/digitStruct")
    with pytest.raises(DatasetError, match="links to another file"):
        load_dataset(root)
