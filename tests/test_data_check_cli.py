"""`omni-rl data check FILE [--env NAME]`: every bad row with file, line and field, a summary, exit codes."""

from __future__ import annotations

import json

from bad_media import rewrite_rows

import environments
from omni_rl.cli import main


def dataset(tmp_path, damage=None):
    path = environments.get_class("synthetic_image_color").generate(tmp_path / "d", 8, 0)
    outside = tmp_path / "elsewhere"
    outside.mkdir(exist_ok=True)
    rewrite_rows(path, damage or {}, outside)
    return path


def test_a_clean_dataset_passes(tmp_path, capsys):
    path = dataset(tmp_path)
    assert main(["data", "check", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: 8 rows, 8 ok, 0 bad"


def test_every_bad_row_is_reported_with_file_line_and_field(tmp_path, capsys):
    path = dataset(tmp_path, {1: "missing", 2: "bomb", 5: "outside"})
    with path.open("a") as handle:
        handle.write("{not json\n")
        handle.write(json.dumps({"id": "x", "env": "synthetic_image_color", "messages": []}) + "\n")
    assert main(["data", "check", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    field = "messages[0].content[0].image_url"
    assert out[0].startswith(f"{path}:2: {field}: MediaNotFoundError:")
    assert out[1].startswith(f"{path}:3: {field}: MediaTooLargeError:") and "decompression bomb" in out[1]
    assert out[2].startswith(f"{path}:6: {field}: MediaPathError:")
    assert out[3].startswith(f"{path}:9: <line>: invalid JSON")
    assert out[4] == f"{path}:10: messages: must not be empty"
    assert out[-1] == (
        f"{path}: 10 rows, 5 ok, 5 bad (<line> 1, MediaNotFoundError 1, MediaPathError 1, "
        "MediaTooLargeError 1, messages 1)"
    )
    assert main(["data", "check", str(path), "--allow-outside-paths"]) == 1
    assert "MediaPathError" not in capsys.readouterr().out
    assert main(["data", "check", str(path), "--probe", "none"]) == 1
    assert capsys.readouterr().out.splitlines()[-1].endswith("8 ok, 2 bad (<line> 1, messages 1)")


def test_rows_are_fitted_to_the_environment(tmp_path, capsys):
    path = dataset(tmp_path)
    assert main(["data", "check", str(path), "--env", "asr"]) == 1  # image rows have no audio
    out = capsys.readouterr().out
    assert f"{path}:1: messages: environment 'asr': needs an audio part(s), found 0" in out
    assert main(["data", "check", str(path), "--env", "no_such_env"]) == 1
    assert "environment 'no_such_env'" in capsys.readouterr().out


def test_unreadable_input_and_media_limits_from_a_run_config(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    path = dataset(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({"algorithm": "grpo", "envs": [{"name": "mcq"}],
                                  "media": {"image": {"max_source_pixels": 100}}}))  # fmt: skip
    assert main(["data", "check", str(path), "--config", str(config)]) == 1
    assert "max_source_pixels=100" in capsys.readouterr().out
