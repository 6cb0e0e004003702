"""Every numeric option is checked before any work, with one line naming the option (issue 15, item 3)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import build_parser, main
from bench.errors import UsageError
from bench.options import bounds_of, build_options, flag_for
from bench.registry import registered

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BAD_VALUES = [
    (["--backends", "tfjs", "--tfjs-batch-size", "0"], "--tfjs-batch-size"),
    (["--backends", "tfjs", "--tfjs-batch-size", "-3"], "--tfjs-batch-size"),
    (["--backends", "tfjs", "--tfjs-batch-timeout-s", "0"], "--tfjs-batch-timeout-s"),
    (["--backends", "tfjs", "--tfjs-max-restarts", "-1"], "--tfjs-max-restarts"),
    (["--backends", "tfjs", "--cpu-throttle", "nan"], "--cpu-throttle"),
    (["--backends", "tfjs", "--tfjs-backend", ""], "--tfjs-backend"),
    (["--backends", "tfjs", "--quantization", ","], "--quantization"),
    (["--backends", "tfjs", "--tfjs-min-score", "1.5"], "--tfjs-min-score"),
    (["--backends", "vision", "--vision-batch-size", "0"], "--vision-batch-size"),
    (["--backends", "vision", "--vision-timeout-s", "inf"], "--vision-timeout-s"),
    (["--backends", "vision", "--vision-backoff-s", "-1"], "--vision-backoff-s"),
    (["--backends", "vision", "--vision-backoff-s", "nan"], "--vision-backoff-s"),
    (["--backends", "vision", "--vision-retries", "-2"], "--vision-retries"),
    (["--backends", "tesseract", "--tesseract-timeout-s", "0"], "--tesseract-timeout-s"),
    (["--backends", "tesseract", "--tesseract-psm", "99"], "--tesseract-psm"),
    (["--backends", "tesseract", "--tesseract-min-height", "100000"], "--tesseract-min-height"),
    (["--backends", "tf", "--tf-threshold", "nan"], "--tf-threshold"),
    (["--backends", "tf", "--batch-size", "0"], "--batch-size"),
    (["--backends", "oracle", "--oracle-miss-rate", "2"], "--oracle-miss-rate"),
    (["--backends", "oracle", "--oracle-delay-ms", "1e400"], "--oracle-delay-ms"),
    (["--backends", "oracle", "--oracle-seed", "1.5"], "--oracle-seed"),
    (["--backends", "oracle", "--limit", "0"], "--limit"),
    (["--backends", "oracle", "--repeats", "0"], "--repeats"),
    (["--backends", "oracle", "--warmup", "-1"], "--warmup"),
    (["--backends", "oracle", "--max-megapixels", "0"], "--max-megapixels"),
    (["--backends", "oracle", "--max-megapixels", "-5"], "--max-megapixels"),
    (["--backends", "oracle", "--max-megapixels", "nan"], "--max-megapixels"),
    (["--backends", ""], "--backends"),
    (["--backends", " , "], "--backends"),
    (["--backends", "oracle", "--tfjs-batch-size", "0"], "--tfjs-batch-size"),
]


@pytest.mark.parametrize(("argv", "flag"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_the_option_before_any_work(argv, flag, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(["run", *argv, "--out", str(out), "--no-store"], capsys)
    assert code == 2, (stdout, err)
    assert err.count("\n") == 1 and flag in err, err
    assert "Traceback" not in err
    assert not out.exists()


def test_options_of_a_backend_left_out_are_reported_as_ignored(tmp_path: Path, capsys):
    code, stdout, err = run_cli(["run", "--backends", "oracle", "--limit", "2", "--warmup", "0", "--no-store",
                                 "--tfjs-batch-size", "4", "--tesseract-psm", "7", "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert "--tfjs-batch-size: ignored, this run does not include the tfjs backend" in stdout
    assert "--tesseract-psm: ignored, this run does not include the tesseract backend" in stdout


def test_a_flag_shared_with_a_selected_backend_is_not_reported():
    from bench.registry import check_unselected_options

    assert check_unselected_options({"oracle": {"seed": "3"}}, {"oracle"}) == []
    assert check_unselected_options({"tesseract": {"psm": "7"}}, {"oracle"}) == [
        "--tesseract-psm: ignored, this run does not include the tesseract backend"]


def test_sweep_refuses_an_empty_backends_list(tmp_path: Path, capsys):
    code, _, err = run_cli(["sweep", "--backends", "", "--out", str(tmp_path / "o"), "--no-store"], capsys)
    assert code == 2 and "--backends" in err and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "flag"), [
    (["compare", "a", "b", "--alpha", "0"], "--alpha"),
    (["compare", "a", "b", "--latency-threshold", "-10%"], "--latency-threshold"),
    (["compare", "a", "b", "--accuracy-threshold", "nan"], "--accuracy-threshold"),
    (["sweep", "--max-accuracy-drop", "-1"], "--max-accuracy-drop"),
    (["sweep", "--min-relative-accuracy", "1.5"], "--min-relative-accuracy"),
    (["history", "--limit", "0"], "--limit"),
    (["nightly", "--date", "../../../tmp/x"], "--date"),
    (["model", "train", "--out", "o", "--epochs", "0"], "--epochs"),
])
def test_command_flags_are_checked_by_the_parser_in_one_line(argv, flag, capsys):
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and flag in err and err.count("\n") == 1, err


@pytest.mark.parametrize(("table", "message"), [
    ('warmup = "x"', "warmup"), ("limit = 0", "limit"), ("repeats = 0", "repeats"), ("gallery = 1.5", "gallery"),
])
def test_suite_numbers_from_the_config_file_are_checked(table, message, tmp_path: Path):
    from bench.nightly import load_config

    config = tmp_path / "bench.toml"
    config.write_text(f'[suites.s]\nbackends = ["oracle"]\n{table}\n')
    with pytest.raises(UsageError, match=message) as raised:
        load_config(config)
    assert str(config) in str(raised.value) and "\n" not in str(raised.value)


def test_a_suite_name_cannot_leave_the_reports_folder(tmp_path: Path):
    from bench.nightly import load_config

    config = tmp_path / "bench.toml"
    config.write_text('[suites."../../escape"]\nbackends = ["oracle"]\n')
    with pytest.raises(UsageError, match="names a folder"):
        load_config(config)


@pytest.mark.parametrize("value", ["nan", "-0.1", "2"])
def test_compare_thresholds_from_the_config_file_are_checked(value):
    from bench.compare import Thresholds

    with pytest.raises(UsageError, match="accuracy"):
        Thresholds.from_mapping({"accuracy": float(value)})


def _option_fields():
    cases = []
    for name, entry in registered().items():
        cls = entry.load()
        for field in dataclasses.fields(cls.Options):
            cases.append((name, cls.Options, field))
    return cases


OPTION_FIELDS = _option_fields()
TEXT = st.one_of(st.text(max_size=12),
                 st.sampled_from(["", " ", "0", "-1", "1", "nan", "inf", "-inf", "1e400", "1.5", "true", "none",
                                  ",", "a,b", "wasm,cpu", "9" * 40, "0x10", "1_000", "\x00", "[red]x"]),
                 st.integers(-10**6, 10**6).map(str),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr))


@PROPERTY
@given(case=st.sampled_from(OPTION_FIELDS), text=TEXT)
def test_any_option_text_builds_valid_options_or_one_line_naming_the_flag(case, text):
    name, options_cls, field = case
    flag = flag_for(name, field)
    try:
        options = build_options(options_cls, name, {field.name: text})
    except UsageError as exc:
        message = str(exc)
        assert message.startswith(flag) and "\n" not in message
        return
    value = getattr(options, field.name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert math.isfinite(value)
        assert bounds_of(field).problem(float(value)) is None
    choices = field.metadata.get("choices")
    if choices and not (value is None and field.default is None):
        items = value if isinstance(value, tuple) else (value,)
        assert items and all(item in choices for item in items)


RUN_FLAGS = ["--limit", "--warmup", "--repeats", "--max-megapixels"]


@PROPERTY
@given(flag=st.sampled_from(RUN_FLAGS), text=TEXT)
def test_any_run_flag_text_parses_to_a_usable_value_or_exits_2_in_one_line(flag, text, capsys):
    from bench.commands.run import config_from_args

    try:
        args = build_parser().parse_args(["run", f"{flag}={text}"])
    except SystemExit as exit_:
        err = capsys.readouterr().err
        assert exit_.code == 2 and flag in err and err.count("\n") == 1
        return
    config = config_from_args(args, args.backend_flags)
    value = getattr(config, flag.lstrip("-").replace("-", "_"))
    assert math.isfinite(value) and value >= (0 if flag == "--warmup" else 1e-300)
