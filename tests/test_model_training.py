"""Smoke training of a few steps (what CI runs), resuming, export, and the CLI's checks."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.model.architecture import ModelConfig

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn.t accept a copy keyword:DeprecationWarning")

TINY = ModelConfig(input_height=32, input_width=64, stem=4, stages=((8, 0), (8, 1), (8, 0)), neck=8,
                   max_detections=5)


def _config(data: Path, out: Path, epochs: int):
    from bench.model.train import TrainConfig

    return TrainConfig(data=str(data), out=str(out), epochs=epochs, steps_per_epoch=1, batch_size=4,
                       holdout=0.34, synthetic=3, synthetic_share=0.25, eval_every=1, warmup_epochs=1,
                       model=TINY)


def test_smoke_training_logs_each_epoch_resumes_and_exports(tiny_dataset: Path, tmp_path: Path):
    from bench.model.export import METADATA, export_run
    from bench.model.train import train

    out = tmp_path / "run"
    lines: list[str] = []
    train(_config(tiny_dataset, out, epochs=1), log=lines.append)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]
    assert "heat_loss" in log[0] and "val_f1" in log[0]
    assert (out / "final.weights.h5").is_file() and (out / "eval.json").is_file()

    with pytest.raises(UsageError, match="--resume"):
        train(_config(tiny_dataset, out, epochs=2))
    lines.clear()
    train(_config(tiny_dataset, out, epochs=2), resume=True, log=lines.append)
    assert any("resumed" in line and "epoch 1" in line for line in lines)
    assert [json.loads(x)["epoch"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2]

    info = export_run(out, tmp_path / "model")
    assert (info.path / "saved_model.pb").is_file()
    metadata = json.loads((info.path / METADATA).read_text())
    assert metadata["input"]["height"] == 32 and metadata["classes"].startswith("zero-based")
    assert info.weights_bytes == info.params * 4

    again = export_run(out, tmp_path / "model")
    assert (again.path / "saved_model.pb").is_file() and not list(tmp_path.glob(".model.*"))
    keep = tmp_path / "not-a-model"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not a SavedModel"):
        export_run(out, keep)
    assert (keep / "notes.txt").read_text() == "mine"


def test_export_without_out_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["model", "export", "--run", str(tmp_path)])
    assert exit_info.value.code == 2 and "--out" in capsys.readouterr().err


def test_resume_refuses_different_settings(tiny_dataset: Path, tmp_path: Path):
    from dataclasses import replace

    from bench.model.train import _check_out

    config = _config(tiny_dataset, tmp_path, epochs=1)
    (tmp_path / "train_config.json").write_text(json.dumps(config.to_dict()))
    _check_out(tmp_path, replace(config, epochs=5), resume=True)
    with pytest.raises(UsageError, match="batch_size"):
        _check_out(tmp_path, replace(config, batch_size=8), resume=True)


def _trained_weights(path: Path) -> list:
    """The weights a gradient step changes (batch norm's moving statistics left out)."""
    import h5py
    import numpy as np

    arrays: dict = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, np.array(item)) if isinstance(item, h5py.Dataset) else None)
    return [a for name, a in sorted(arrays.items())
            if not ("batch_normalization" in name and name.endswith(("/2", "/3")))]


def test_init_starts_from_an_earlier_runs_weights_and_refuses_another_network(tiny_dataset: Path, tmp_path: Path):
    from dataclasses import replace

    import numpy as np

    from bench.model.train import train

    first = train(_config(tiny_dataset, tmp_path / "first", epochs=3), log=lambda _: None)
    barely = replace(_config(tiny_dataset, tmp_path / "warm", epochs=1), learning_rate=1e-9)
    lines: list[str] = []
    warm = train(replace(barely, init=str(tmp_path / "first")), log=lines.append)
    cold = train(replace(barely, out=str(tmp_path / "cold")), log=lambda _: None)
    assert any(line.startswith("started from") and "first" in line for line in lines)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(_trained_weights(first), _trained_weights(warm)))
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(_trained_weights(first), _trained_weights(cold)))

    wider = replace(TINY, neck=12)
    with pytest.raises(UsageError, match="--init .*another network"):
        train(replace(barely, out=str(tmp_path / "wider"), model=wider, init=str(tmp_path / "first")))
    with pytest.raises(UsageError, match="train_config.json"):
        train(replace(barely, out=str(tmp_path / "nowhere"), init=str(tmp_path / "missing")))
    assert not (tmp_path / "wider").exists() and not (tmp_path / "nowhere").exists()


def _parser():
    from bench.model import commands

    parser = argparse.ArgumentParser(prog="bench")
    commands.register(parser.add_subparsers())
    return parser


def test_cli_refuses_a_test_split_and_a_missing_folder(tmp_path: Path):
    from bench.model.commands import handle_train

    test_split = tmp_path / "test-dev"
    test_split.mkdir()
    (test_split / "annotations.jsonl").write_text("")
    args = _parser().parse_args(["model", "train", "--data", str(test_split), "--out", str(tmp_path / "o")])
    with pytest.raises(UsageError, match="test split"):
        handle_train(args)
    args = _parser().parse_args(["model", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    with pytest.raises(UsageError, match="annotations.jsonl"):
        handle_train(args)


def test_cli_export_names_a_folder_that_is_not_a_run(tmp_path: Path):
    args = _parser().parse_args(["model", "export", "--run", str(tmp_path), "--out", str(tmp_path / "m")])
    with pytest.raises(UsageError, match="train_config.json"):
        args.handler(args)


def test_cli_shapes_the_network_from_input_size_stages_and_neck(tiny_dataset: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    from bench.model import train as train_module
    from bench.model.commands import handle_train

    seen = []
    monkeypatch.setattr(train_module, "train", lambda config, resume=False: seen.append(config))
    args = _parser().parse_args(["model", "train", "--data", str(tiny_dataset), "--out", str(tmp_path / "o"),
                                 "--input-size", "96x192", "--stages", "40x1,80x2,160x3,192x1", "--neck", "32"])
    assert handle_train(args) == 0
    model = seen[0].model
    assert (model.input_height, model.input_width, model.neck) == (96, 192, 32)
    assert model.stages == ((40, 1), (80, 2), (160, 3), (192, 1))

    args = _parser().parse_args(["model", "train", "--data", str(tiny_dataset), "--out", str(tmp_path / "o"),
                                 "--input-size", "80x160", "--stages", "32x1,64x1,128x1,192x1"])
    with pytest.raises(UsageError, match="multiple of 32"):
        handle_train(args)
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["model", "train", "--data", str(tiny_dataset), "--out", str(tmp_path / "o"),
                              "--neck", "0"])
    assert exit_info.value.code == 2

    args = _parser().parse_args(["model", "train", "--data", str(tiny_dataset), "--out", str(tmp_path / "o"),
                                 "--reader-crops", "--loose-windows", "0.3"])
    assert handle_train(args) == 0 and seen[-1].crop.loose_probability == 0.3
    args = _parser().parse_args(["model", "train", "--data", str(tiny_dataset), "--out", str(tmp_path / "o"),
                                 "--loose-windows", "0.3"])
    with pytest.raises(UsageError, match="--loose-windows.*--reader-crops"):
        handle_train(args)


@pytest.mark.parametrize("stages", ["32,64", "32x1,64xtwo", "0x1", ""])
def test_cli_refuses_malformed_stages(stages: str, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["model", "train", "--out", "o", "--stages", stages])
    assert exit_info.value.code == 2
    assert "CHANNELSxBLOCKS" in capsys.readouterr().err
