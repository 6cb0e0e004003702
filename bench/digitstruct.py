"""Reader (and writer, for tests and conversion) of SVHN's ``digitStruct.mat`` (MATLAB v7.3/HDF5).

The file holds a struct array ``digitStruct`` with fields ``name`` (a char array per photo) and
``bbox`` (per photo a struct with ``label``, ``left``, ``top``, ``width``, ``height``; each is a
1x1 number for a one-digit photo or an array of object references for several digits). Label
10 stands for the digit 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import DatasetError, first_line

FIELDS = ("label", "left", "top", "width", "height")


MAX_NAME = 1024
"""The longest photo name read (characters)."""
MAX_DIGITS = 100
"""The most boxes one photo may hold."""
MAX_ENTRIES = 10_000_000
"""The most photos one file may list (SVHN extra has 202,353)."""


def _dataset(f, ref, what: str, max_size: int):
    import h5py

    item = f[ref]
    if not isinstance(item, h5py.Dataset):
        raise ValueError(f"{what} is a {type(item).__name__}, not an array")
    if item.external or item.is_virtual:
        raise ValueError(f"{what} keeps its data in another file; refused")
    if item.size > max_size:
        raise ValueError(f"{what} holds {item.size} values (at most {max_size})")
    if item.dtype.kind not in "iufO":
        raise ValueError(f"{what} holds {item.dtype} values, not numbers")
    return item


def _text(f, ref) -> str:
    codes = np.asarray(_dataset(f, ref, "the name", MAX_NAME)[()], dtype=np.float64).ravel()
    if not np.all(np.isfinite(codes)) or np.any(codes != np.round(codes)) or np.any((codes < 1) | (codes > 0x10FFFF)):
        raise ValueError("the name holds values that are not character codes")
    if np.any((codes >= 0xD800) & (codes <= 0xDFFF)):
        raise ValueError("the name holds surrogate character codes")
    return "".join(chr(int(c)) for c in codes)


def _values(f, ref, key: str) -> list[float]:
    import h5py

    data = _dataset(f, ref, f"bbox {key}", MAX_DIGITS)
    if data.dtype.kind == "O":
        values = []
        for item in np.asarray(data[()]).ravel():
            if not isinstance(item, h5py.Reference) or not item:
                raise ValueError(f"bbox {key} holds something other than references")
            values.append(float(np.asarray(_dataset(f, item, f"bbox {key} value", 1)[()]).ravel()[0]))
        return values
    return [float(v) for v in np.asarray(data[()], dtype=np.float64).ravel()]


def _label(value: float) -> int | float:
    """SVHN's label as a digit (10 stands for 0); a value that is no whole number is left for validation."""
    if not (np.isfinite(value) and float(value).is_integer()):
        return value
    return 0 if value == 10 else int(value)


def _hard_link(group, name: str, where: Path):
    import h5py

    link = group.get(name, getlink=True)
    if link is None:
        raise DatasetError(f"{where}: no {name!r} in it; not in the SVHN digitStruct layout, re-extract the archive")
    if not isinstance(link, h5py.HardLink):
        raise DatasetError(f"{where}: {name!r} links to another file ({type(link).__name__}); refused")
    return group[name]


def _entry(f, name_ref, bbox_ref) -> dict:
    import h5py

    name = _text(f, name_ref)
    box_group = f[bbox_ref]
    if not isinstance(box_group, h5py.Group):
        raise ValueError("its bbox is not a struct")
    columns = {}
    for key in FIELDS:
        link = box_group.get(key, getlink=True)
        if link is None:
            raise ValueError(f"its bbox lacks {key}")
        if not isinstance(link, h5py.HardLink):
            raise ValueError(f"its bbox {key} links to another file; refused")
        columns[key] = _values(f, box_group[key].ref, key)
    count = len(columns["label"])
    if any(len(values) != count for values in columns.values()):
        raise ValueError("its bbox fields have different lengths")
    boxes = [{"label": _label(columns["label"][j]), **{key: columns[key][j] for key in FIELDS[1:]}}
             for j in range(count)]
    return {"image": name, "boxes": boxes}


def read_digitstruct(path: Path, problems: list[str] | None = None) -> list[dict]:
    """Entries ``{"image": name, "boxes": [{"label", "left", "top", "width", "height"}]}``.

    Values are returned as read (numbers, maybe not finite: :mod:`bench.dataset` validates them).
    An entry that cannot be read is skipped and described in ``problems`` when a list is given,
    else it is a :class:`DatasetError`. Links to other files and external or virtual datasets are
    refused, so reading never leaves the file.
    """
    import h5py

    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise DatasetError(f"{path}: not a MATLAB v7.3 (HDF5) digitStruct file ({first_line(exc)}); "
                           "re-extract the archive") from None
    with f:
        try:
            group = _hard_link(f, "digitStruct", path)
            names = _hard_link(group, "name", path)
            bboxes = _hard_link(group, "bbox", path)
            for what, item in (("name", names), ("bbox", bboxes)):
                if not isinstance(item, h5py.Dataset) or item.dtype.kind != "O" or item.size > MAX_ENTRIES:
                    raise DatasetError(f"{path}: digitStruct/{what} is not an array of references; "
                                       "not in the SVHN digitStruct layout, re-extract the archive")
                if item.external or item.is_virtual:
                    raise DatasetError(f"{path}: digitStruct/{what} keeps its data in another file; refused")
            name_refs = np.asarray(names[()]).ravel()
            bbox_refs = np.asarray(bboxes[()]).ravel()
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"{path}: not in the SVHN digitStruct layout ({type(exc).__name__}: "
                               f"{first_line(exc)}); re-extract the archive") from None
        if len(name_refs) != len(bbox_refs):
            message = f"{path}: {len(name_refs)} names but {len(bbox_refs)} bbox entries"
            if problems is None:
                raise DatasetError(f"{message}; re-extract the archive")
            problems.append(f"{message}; only the first {min(len(name_refs), len(bbox_refs))} are read")
        entries = []
        for index, (name_ref, bbox_ref) in enumerate(zip(name_refs, bbox_refs), 1):
            try:
                if not isinstance(name_ref, h5py.Reference) or not isinstance(bbox_ref, h5py.Reference):
                    raise ValueError("it holds something other than references")
                entries.append(_entry(f, name_ref, bbox_ref))
            except Exception as exc:
                message = f"{path} entry {index}: unreadable ({first_line(exc, type(exc).__name__)})"
                if problems is None:
                    raise DatasetError(f"{message}; re-extract the archive") from None
                problems.append(f"{message}; entry skipped")
    return entries


def write_digitstruct(path: Path, entries: list[dict]) -> None:
    """Write entries in the official layout (labels 0 written as 10), as the SVHN files do."""
    import h5py

    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        counter = iter(range(10**9))

        def store(data: np.ndarray) -> h5py.Reference:
            ds = refs.create_dataset(f"r{next(counter)}", data=data)
            return ds.ref

        ref_dtype = h5py.special_dtype(ref=h5py.Reference)
        group = f.create_group("digitStruct")
        names = group.create_dataset("name", (len(entries), 1), dtype=ref_dtype)
        bboxes = group.create_dataset("bbox", (len(entries), 1), dtype=ref_dtype)
        for i, entry in enumerate(entries):
            names[i, 0] = store(np.array([[ord(c)] for c in entry["image"]], dtype=np.uint16))
            box_group = refs.create_group(f"bbox{i}")
            for key in FIELDS:
                values = [float(10 if (key == "label" and b[key] == 0) else b[key]) for b in entry["boxes"]]
                if len(values) == 1:
                    box_group.create_dataset(key, data=np.array([[values[0]]]))
                else:
                    items = box_group.create_dataset(key, (len(values), 1), dtype=ref_dtype)
                    for j, value in enumerate(values):
                        items[j, 0] = store(np.array([[value]]))
            bboxes[i, 0] = box_group.ref
