"""OD API conventions without a browser: label maps, class rules, output names, the signature reader."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from backends.tfjs.outputs import resolve_outputs
from bench.errors import ModelError, UsageError
from bench.od_api import (
    ClassFit,
    ClassMap,
    Decoder,
    find_label_map,
    from_multiclass,
    parse_label_map,
    resolve_classes,
    threshold_of,
)
from bench.saved_model import read_signature
from bench.tfjs_convert import names_by_key
from tests.od_api_fixture import LABEL_MAP


def test_label_maps_in_the_od_api_text_format():
    text = ("# digits\nitem {\n  id: 1\n  name: '1'\n}\nitem { name: \"0\" id: 10 }\n"
            "item {\n  id: 11\n  name: 'background'\n  keypoints { id: 0 label: 'x' }\n}\n"
            "item { id: 12 display_name: \"seven\" name: 'n7' }\n")
    assert parse_label_map(text) == {1: 1, 10: 0, 11: None, 12: 7}
    assert parse_label_map(LABEL_MAP) == {i: i % 10 for i in range(1, 11)}
    with pytest.raises(ModelError, match="no integer id"):
        parse_label_map("item { name: '1' }", "x.pbtxt")
    with pytest.raises(ModelError, match="never closed"):
        parse_label_map("item { id: 1 name: '1'", "x.pbtxt")


def test_the_label_map_is_found_beside_an_export_and_decides(tmp_path: Path):
    export = tmp_path / "export"
    (export / "tfjs" / "uint8").mkdir(parents=True)
    (export / "saved_model").mkdir()
    assert find_label_map(export / "tfjs" / "uint8") is None
    (export / "label_map.pbtxt").write_text(LABEL_MAP)
    for folder in (export / "saved_model", export / "tfjs" / "uint8", export):
        assert find_label_map(folder) == (export / "label_map.pbtxt").resolve()
    assert find_label_map(tmp_path) is None
    rule = resolve_classes(None, export / "tfjs" / "uint8", {}, "--tfjs-classes")
    assert rule.convention == "label map" and rule.digit(10.0) == 0 and rule.digit(4.988) == 5
    assert rule.digit(11) is None
    assert resolve_classes("one-based", export, {}, "--tf-classes").describe() == "one-based (--tf-classes)"
    ours = resolve_classes(None, tmp_path, {"classes": "zero-based: class = digit 0-9"}, "--tf-classes")
    assert (ours.convention, ours.source) == ("zero-based", "the model's digitbench.json")
    (export / "label_map.pbtxt").write_text("item { name: 'x' }")
    with pytest.raises(ModelError, match="label_map.pbtxt: an item has no integer id.*--tfjs-classes"):
        resolve_classes(None, export, {}, "--tfjs-classes")


def test_classes_that_do_not_fit_their_rule_give_a_note():
    fit, rule = ClassFit(), ClassMap("zero-based", "default")
    for value in (1.0, 4.988, 10.0, 10.0):
        fit.observe(value, rule.digit(value) is not None)
    [unmapped, rounded] = fit.notes(rule, "--tfjs-classes")
    assert "classes 10 (2x) are not digits under zero-based (default)" in unmapped
    assert "emitted classes 1..10" in unmapped and "--tfjs-classes" in unmapped and "label_map.pbtxt" in unmapped
    assert "0.012 off an integer" in rounded
    assert ClassFit().notes(rule, "--tf-classes") == []


def test_thresholds_and_the_multiclass_form():
    assert threshold_of(None, {"default_threshold": 0.35}, "--tf-threshold") == (0.35, None)
    value, note = threshold_of(None, {}, "--tfjs-min-score")
    assert value == 0.5 and "--tfjs-min-score" in note
    assert threshold_of(0.2, {}, "--tf-threshold") == (0.2, None)
    scores, classes = from_multiclass(np.array([[0.9, 0.1, 0.7, 0.2], [0.1, 0.3, 0.2, 0.25]]))
    assert scores.tolist() == [0.7, 0.3] and classes.tolist() == [2.0, 1.0]
    decoder = Decoder(ClassMap("one-based", "test"), floor=0.25)
    found = decoder.candidates(np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]), scores, classes,
                               lambda box: (box[1] * 10, box[0] * 10, 5.0, 5.0))
    assert [(d.label, d.score, d.left) for d in found] == [(1, 0.7, 0.0), (0, 0.3, 5.0)]


def _model_json(outputs: dict[str, str], structured: list[str] | None = None) -> dict:
    data = {"modelTopology": {"node": [{"name": n.split(":")[0]} for n in outputs.values()]},
            "signature": {"outputs": {key: {"name": name} for key, name in outputs.items()}}}
    if structured is not None:
        data["userDefinedMetadata"] = {"structuredOutputKeys": structured}
    return data


LOST = {"Identity_2:0": "Identity_2:0", "detection_boxes": "Identity_1:0", "detection_multiclass_scores": "Identity_3:0",
        "Identity:0": "Identity:0", "Identity_4:0": "Identity_4:0", "num_detections": "Identity_5:0",
        "raw_detection_scores": "Identity_7:0", "raw_detection_boxes": "Identity_6:0"}
"""model.json signature outputs of a converted OD API SSD: three names lost."""
KEYS = ["detection_anchor_indices", "detection_boxes", "detection_classes", "detection_multiclass_scores",
        "detection_scores", "num_detections", "raw_detection_boxes", "raw_detection_scores"]


def test_output_names_from_structured_keys_explicit_names_or_nothing(tmp_path: Path):
    found = resolve_outputs(_model_json(LOST, KEYS), tmp_path)
    assert found.source == "model.json structuredOutputKeys"
    assert found.tensors == {"detection_boxes": "Identity_1:0", "detection_scores": "Identity_4:0",
                             "detection_classes": "Identity_2:0", "num_detections": "Identity_5:0"}
    explicit = resolve_outputs(_model_json(LOST), tmp_path,
                               "boxes=detection_boxes,scores=Identity_4,classes=Identity_2:0,num=num_detections")
    assert explicit.tensors == found.tensors and explicit.source == "--tfjs-outputs"
    two = resolve_outputs(_model_json(LOST), tmp_path, "boxes=Identity_1:0,multiclass=Identity_3:0")
    assert two.two_output and list(two.tensors) == ["detection_boxes", "detection_multiclass_scores"]
    fallback = resolve_outputs(_model_json(LOST), tmp_path)
    assert fallback.two_output and "detection_multiclass_scores" in fallback.note and "--tfjs-outputs" in fallback.note
    assert found.note is None and two.note is None
    without_multiclass = {k: v for k, v in LOST.items() if k != "detection_multiclass_scores"}
    with pytest.raises(UsageError) as caught:
        resolve_outputs(_model_json(without_multiclass), tmp_path)
    message = str(caught.value)
    assert "does not name detection_scores, detection_classes" in message and "--tfjs-outputs boxes=" in message
    assert "--use_structured_outputs_names" in message and "\n" not in message
    with pytest.raises(UsageError, match="'Identity_9' is neither"):
        resolve_outputs(_model_json(LOST), tmp_path, "boxes=Identity_9,scores=Identity_4,classes=Identity_2")
    with pytest.raises(UsageError, match="ROLE=NAME"):
        resolve_outputs(_model_json(LOST), tmp_path, "box=Identity_1")
    assert names_by_key(KEYS, ["Identity_10:0", "Identity_2:0"]) is None


@pytest.mark.slow
def test_signature_reader_agrees_with_tensorflow(od_api_export: Path, tmp_path: Path):
    tf = pytest.importorskip("tensorflow")
    function = tf.saved_model.load(str(od_api_export / "saved_model")).signatures["serving_default"]
    signature = read_signature(od_api_export / "saved_model")
    assert set(signature.outputs) == set(function.structured_outputs)
    assert signature.inputs["input_tensor"].dtype == "uint8" and signature.inputs["input_tensor"].shape == (1, None, None, 3)
    paired = names_by_key(signature.flat_output_keys(), [t.name for t in function.outputs])
    assert paired == dict(zip(sorted(function.structured_outputs), [t.name for t in function.outputs]))
    model_json = json.loads((od_api_export / "tfjs" / "none" / "model.json").read_text())
    assert "detection_scores" not in model_json["signature"]["outputs"]
    found = resolve_outputs(model_json, od_api_export / "tfjs" / "none")
    assert found.source == f"the signature of {(od_api_export / 'saved_model').resolve()}"
    alone = tmp_path / "alone"
    shutil.copytree(od_api_export / "tfjs" / "none", alone)
    assert resolve_outputs(json.loads((alone / "model.json").read_text()), alone).note is not None
