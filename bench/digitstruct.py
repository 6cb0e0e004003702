"""Reader (and writer, for tests and conversion) of SVHN's ``digitStruct.mat`` (MATLAB v7.3/HDF5).

The file holds a struct array ``digitStruct`` with fields ``name`` (a char array per photo) and
``bbox`` (per photo a struct with ``label``, ``left``, ``top``, ``width``, ``height``; each is a
1x1 number for a one-digit photo or an array of object references for several digits). Label
10 stands for the digit 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import DatasetError

FIELDS = ("label", "left", "top", "width", "height")


def _text(f, ref) -> str:
    return "".join(chr(int(c)) for c in np.asarray(f[ref]).ravel())


def _values(f, dataset) -> list[float]:
    data = np.asarray(dataset)
    if data.dtype == object or dataset.dtype.kind == "O":
        return [float(np.asarray(f[ref]).ravel()[0]) for ref in data.ravel()]
    return [float(v) for v in data.ravel()]


def read_digitstruct(path: Path) -> list[dict]:
    """Entries ``{"image": name, "boxes": [{"label", "left", "top", "width", "height"}]}``."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not a MATLAB v7.3 (HDF5) digitStruct file ({exc}); re-extract the archive") from None
    with f:
        try:
            group = f["digitStruct"]
            names = group["name"]
            bboxes = group["bbox"]
            entries = []
            for i in range(names.shape[0]):
                name = _text(f, names[i][0])
                box_group = f[bboxes[i][0]]
                columns = {key: _values(f, box_group[key]) for key in FIELDS}
                count = len(columns["label"])
                boxes = []
                for j in range(count):
                    label = int(columns["label"][j])
                    boxes.append({"label": 0 if label == 10 else label,
                                  **{key: columns[key][j] for key in FIELDS[1:]}})
                entries.append({"image": name, "boxes": boxes})
        except (KeyError, ValueError, TypeError) as exc:
            raise DatasetError(f"{path}: not in the SVHN digitStruct layout ({exc!r}); re-extract the archive") from None
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
