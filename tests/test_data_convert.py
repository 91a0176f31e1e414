"""``omni-rl data convert``: LLaVA/ShareGPT, HF datasets and parquet sources become rows that load and fit
their environment; bad source rows are reported with file, line/row and field, and skipped."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import environments
from omni_rl.cli import main
from omni_rl.data.loading import load_prompts
from omni_rl.data.schema import MediaPart, TextPart
from omni_rl.media.params import MediaParams
from tests.media_fixtures import write_mp4

RED, BLUE = (255, 0, 0), (0, 0, 255)


def png(path: Path | None, colour: tuple[int, int, int], size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    return buf.getvalue()


def wav(path: Path, rate: int = 16000, seconds: float = 0.25, freq: float = 440.0) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def convert(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main(["data", "convert", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def resolved(part: MediaPart) -> Path:
    assert not Path(part.url).is_absolute() and ".." not in Path(part.url).parts, part.url
    return Path(part.base_dir) / part.url


def prepared(prompts, env: str) -> list:
    """Every prompt goes through the environment's preparation as training does it."""
    built = environments.get(env)
    return [built.make_prompt(p) for p in prompts]


def test_llava_json_places_media_keeps_turns_takes_last_gpt_as_target(tmp_path, capsys):
    src = tmp_path / "src"
    png(src / "imgs/red.png", RED)
    png(src / "imgs/blue.png", BLUE)
    png(src / "imgs/red_again.png", RED)  # same bytes as red.png: stored once
    human, gpt = "human", "gpt"
    rows = [
        {
            "id": "single",
            "image": "imgs/red.png",
            "choices": ["red", "blue"],
            "conversations": [{"from": human, "value": "<image>\nWhich colour?"}, {"from": gpt, "value": "A"}],
        },
        {
            "id": "multi",
            "image": ["imgs/red.png", "imgs/blue.png"],
            "conversations": [
                {"from": "system", "value": "Be brief."},
                {"from": human, "value": "Compare <image> and <image>."},
                {"from": gpt, "value": "B"},
                {"from": human, "value": "Sure?"},
                {"from": gpt, "value": " A "},
            ],
        },
        {"id": "no-placeholder", "image": "imgs/red_again.png", "conversations": [
            {"from": human, "value": "Colour?"}, {"from": gpt, "value": "B"}]},
        {"id": "missing", "image": "imgs/nope.png", "conversations": [
            {"from": human, "value": "<image>?"}, {"from": gpt, "value": "A"}]},
        {"id": "too-many", "image": "imgs/red.png", "conversations": [
            {"from": human, "value": "<image> <image>"}, {"from": gpt, "value": "A"}]},
        {"id": "not-an-option", "image": "imgs/red.png", "choices": ["red", "blue"], "conversations": [
            {"from": human, "value": "<image>"}, {"from": gpt, "value": "C"}]},
        {"id": "no-answer", "conversations": [{"from": human, "value": "Hello?"}]},
    ]  # fmt: skip
    (src / "llava.json").write_text(json.dumps(rows))
    out = tmp_path / "out" / "train.jsonl"

    code, stdout, stderr = convert(
        capsys, "llava", src / "llava.json", out, "--env", "mcq", "--meta-fields", "choices"
    )

    assert code == 1  # rows were skipped
    assert "7 rows read, 3 written, 4 skipped" in stdout
    where = str(src / "llava.json")
    assert f"{where} row 3: image: MediaNotFoundError" in stderr
    assert f"{where} row 4: conversations[0].value: more <image> placeholders" in stderr
    assert f"{where} row 5: target: environment 'mcq':" in stderr and "not among the options" in stderr
    assert f"{where} row 6: conversations: the last turn must be from gpt" in stderr

    report = load_prompts(out)
    assert not report.issues
    single, multi, bare = report.prompts
    assert [p.id for p in report.prompts] == ["single", "multi", "no-placeholder"]
    assert single.target == "A" and single.meta == {"choices": ["red", "blue"]}
    kinds = [type(p).__name__ for p in single.messages[0].content]
    assert kinds == ["MediaPart", "TextPart"] and single.messages[0].text == "Which colour?"
    assert [m.role for m in multi.messages] == ["system", "user", "assistant", "user"]
    assert multi.target == "A"
    content = multi.messages[1].content
    assert [p.text if isinstance(p, TextPart) else p.modality for p in content] == [
        "Compare ",
        "image",
        " and ",
        "image",
        ".",
    ]
    assert resolved(content[1]).read_bytes() == png(None, RED)
    assert resolved(content[3]).read_bytes() == png(None, BLUE)
    assert bare.media_parts()[0].url == single.media_parts()[0].url  # deduplicated by content
    assert sorted(p.name for p in (out.parent / "train_media").iterdir()) == sorted(
        {resolved(p).name for p in (*single.media_parts(), *multi.media_parts())}
    )
    assert len(list((out.parent / "train_media").iterdir())) == 2
    assert "(A) red" in prepared([single], "mcq")[0].messages[0].text
    prepared(report.prompts, "mcq")


def test_sharegpt_jsonl_audio_and_video_messages_and_bad_lines(tmp_path, capsys):
    wav(tmp_path / "clip.wav")
    write_mp4(tmp_path / "clip.mp4", 1.0, fps=4, size=(32, 32))
    good = {
        "messages": [
            {"role": "user", "content": "<video>Listen: <audio>"},
            {"role": "assistant", "content": "hello world"},
        ],
        "audios": ["clip.wav"],
        "videos": ["clip.mp4"],
    }
    bad_role = {"messages": [{"role": "user", "content": "<audio>"}, {"role": "assistant", "content": "<audio> hi"}], "audios": ["clip.wav"]}  # fmt: skip
    lines = [
        json.dumps({**good, "id": 7}),
        "{not json",
        json.dumps(bad_role),
        "",
        json.dumps({**good, "id": "b"}),
    ]
    (tmp_path / "asr.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "asr_rows.jsonl"

    code, stdout, stderr = convert(capsys, "sharegpt", tmp_path / "asr.jsonl", out, "--env", "asr")

    assert code == 1 and "4 rows read, 2 written, 2 skipped" in stdout
    assert f"{tmp_path / 'asr.jsonl'}:2: <line>: invalid JSON" in stderr
    assert (
        f"{tmp_path / 'asr.jsonl'}:3: messages[1].value: media placeholders are allowed in human turns only"
        in stderr
    )
    prompts = load_prompts(out).prompts
    assert [p.id for p in prompts] == ["7", "b"] and prompts[0].target == "hello world"
    parts = prompts[0].messages[0].content
    assert [p.text if isinstance(p, TextPart) else p.modality for p in parts] == [
        "video",
        "Listen: ",
        "audio",
    ]
    assert resolved(parts[0]).read_bytes() == (tmp_path / "clip.mp4").read_bytes()
    assert resolved(parts[2]).suffix == ".wav"
    assert len(list((tmp_path / "asr_rows_media").iterdir())) == 2  # both rows share the two files
    assert "Transcribe the audio." in prepared(prompts, "asr")[0].messages[0].text


def test_llava_dpo_rows_from_chosen_and_rejected(tmp_path, capsys):
    png(tmp_path / "red.png", RED)
    ask = [{"from": "human", "value": "<image>What colour is this?"}]
    rows = [
        {"id": "p1", "image": "red.png", "conversations": ask, "chosen": "Red.", "rejected": {"from": "gpt", "value": "Blue."}},
        {"id": "p2", "image": "red.png", "conversations": ask, "chosen": "Red."},
    ]  # fmt: skip
    (tmp_path / "prefs.json").write_text(json.dumps(rows))
    out = tmp_path / "prefs.jsonl"

    code, _, stderr = convert(capsys, "llava", tmp_path / "prefs.json", out, "--env", "mcq")

    assert code == 1 and "row 1: rejected: a DPO row needs both chosen and rejected" in stderr
    (pref,) = load_prompts(out).prompts
    assert pref.is_preference and pref.target is None
    assert [m.text for m in pref.chosen] == ["Red."] and [m.text for m in pref.rejected] == ["Blue."]
    assert pref.media_parts()[0].modality == "image"


def _hf_source(tmp_path: Path):
    import datasets

    red, blue = png(tmp_path / "media/red.png", RED), png(tmp_path / "media/blue.png", BLUE)
    assert red != blue
    wav(tmp_path / "media/a.wav", 16000)
    wav(tmp_path / "media/b.wav", 8000, freq=880.0)
    ds = datasets.Dataset.from_dict(
        {
            "question": ["Which colour?", "Which colour?", "And now?", "Which colour?"],
            "answer": ["A", "B", "A", None],
            "choices": [["red", "blue"]] * 4,
            "image": [str(tmp_path / f"media/{c}.png") for c in ("red", "blue", "red", "red")],
            "audio": [str(tmp_path / f"media/{n}.wav") for n in ("a", "b", "a", "a")],
        }
    )
    return ds.cast_column("image", datasets.Image()).cast_column("audio", datasets.Audio())


def test_hf_saved_dataset_with_image_and_audio_features(tmp_path, capsys):
    saved = tmp_path / "hf_saved"
    _hf_source(tmp_path).save_to_disk(str(saved))
    out = tmp_path / "rows" / "hf.jsonl"

    code, stdout, stderr = convert(capsys, "hf", saved, out, "--env", "mcq", "--meta-fields", "choices")

    assert "columns: prompt=question, target=answer, image=image, audio=audio" in stdout
    assert code == 1 and "4 rows read, 3 written, 1 skipped" in stdout
    assert f"{saved} row 3: answer: missing target" in stderr
    prompts = load_prompts(out).prompts
    assert [p.id for p in prompts] == ["hf_saved-0", "hf_saved-1", "hf_saved-2"]
    assert [p.target for p in prompts] == ["A", "B", "A"]
    image, audio = prompts[0].media_parts()
    assert (image.modality, audio.modality) == ("image", "audio")
    assert resolved(image).read_bytes() == (tmp_path / "media/red.png").read_bytes()
    samples, rate = sf.read(resolved(prompts[1].media_parts()[1]))
    expected, expected_rate = sf.read(tmp_path / "media/b.wav")
    assert rate == expected_rate == 8000 and np.array_equal(samples, expected)
    assert prompts[2].media_parts()[0].url == image.url  # same image bytes, one file
    assert len(list((out.parent / "hf_media").iterdir())) == 4  # 2 images + 2 clips
    assert (
        prepared(prompts, "mcq")[1].messages[0].text.endswith("Answer with the letter of the correct option.")
    )

    exported = tmp_path / "exported.parquet"  # the same dataset as a parquet file datasets loads
    _hf_source(tmp_path).to_parquet(str(exported))
    code, stdout, _ = convert(capsys, "hf", exported, tmp_path / "rows" / "hf.jsonl", "--env", "mcq")
    assert code == 1 and "3 written, 1 skipped" in stdout
    assert "media: 0 files written" in stdout  # every file is already there


def test_parquet_columns_with_bytes_and_paths(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    wav(tmp_path / "clips/one.wav")
    table = pa.table(
        {
            "qid": ["q1", "q2", "q3", "q4"],
            "text": ["Colour?", "Colour?", "Colour?", "Colour?"],
            "gold": ["A", "B", "A", "A"],
            "picture": [png(None, RED), png(None, BLUE), png(None, RED), b"not an image"],
            "sound": ["clips/one.wav", "clips/missing.wav", None, None],
        }
    )
    pq.write_table(table, tmp_path / "data.parquet")
    out = tmp_path / "data.jsonl"

    code, stdout, stderr = convert(
        capsys, "parquet", tmp_path / "data.parquet", out, "--env", "mcq", "--id-field", "qid",
        "--prompt-field", "text", "--target-field", "gold", "--image-field", "picture", "--audio-field", "sound",
    )  # fmt: skip

    assert code == 1 and "4 rows read, 2 written, 2 skipped" in stdout
    assert f"{tmp_path / 'data.parquet'} row 1: sound: MediaNotFoundError" in stderr
    assert f"{tmp_path / 'data.parquet'} row 3: picture: not an image" in stderr
    first, third = load_prompts(out).prompts
    assert (first.id, third.id) == ("q1", "q3") and first.target == "A"
    assert [p.modality for p in first.media_parts()] == ["image", "audio"]
    assert first.media_parts()[0].url == third.media_parts()[0].url and first.media_parts()[0].url.endswith(
        ".png"
    )
    assert resolved(first.media_parts()[1]).read_bytes() == (tmp_path / "clips/one.wav").read_bytes()
    assert first.messages[0].text == "Colour?"
    prepared([first, third], "mcq")


def test_reference_media_points_at_the_source_files(tmp_path, capsys):
    png(tmp_path / "images/red.png", RED)
    rows = [{"id": "r", "image": "red.png", "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "A"}]}]  # fmt: skip
    (tmp_path / "src.json").write_text(json.dumps(rows))
    out = tmp_path / "out" / "ref.jsonl"

    code, stdout, _ = convert(
        capsys, "llava", tmp_path / "src.json", out, "--env", "mcq", "--media-dir", tmp_path / "images", "--reference-media"
    )  # fmt: skip

    assert code == 0 and "1 referenced" in stdout and "media.allow_outside_paths: true" in stdout
    assert not (out.parent / "ref_media").exists()
    assert json.loads(out.read_text())["messages"][0]["content"][0]["image_url"]["url"] == "../images/red.png"
    assert load_prompts(out, params=MediaParams(allow_outside_paths=True)).prompts[0].id == "r"
    assert load_prompts(out).issues[0].reason.startswith("MediaPathError")  # refused by default


def test_clean_source_exits_0_and_unreadable_input_exits_2(tmp_path, capsys):
    png(tmp_path / "a.png", RED)
    row = {"image": "a.png", "env": "mcq", "conversations": [{"from": "human", "value": "?"}, {"from": "gpt", "value": "A"}]}  # fmt: skip
    (tmp_path / "ok.jsonl").write_text(json.dumps(row) + "\n")
    code, stdout, _ = convert(capsys, "llava", tmp_path / "ok.jsonl", tmp_path / "ok_rows.jsonl")
    assert code == 0 and "1 rows read, 1 written, 0 skipped" in stdout
    assert load_prompts(tmp_path / "ok_rows.jsonl").prompts[0].env == "mcq"  # the row's own env

    (tmp_path / "broken.json").write_text("[{")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    for argv in (
        ("llava", tmp_path / "missing.json", tmp_path / "o.jsonl"),
        ("llava", tmp_path / "broken.json", tmp_path / "o.jsonl"),
        ("parquet", tmp_path / "junk.parquet", tmp_path / "o.jsonl"),
        ("hf", tmp_path / "junk.parquet", tmp_path / "o.jsonl"),
        ("llava", tmp_path / "ok.jsonl", tmp_path / "o.jsonl", "--env", "no_such_env"),
        ("llava", tmp_path / "ok.jsonl", tmp_path / "o.json"),
        ("llava", tmp_path / "ok.jsonl", tmp_path / "o.jsonl", "--prompt-field", "q"),
    ):
        code, _, stderr = convert(capsys, *argv)
        assert code == 2 and "omni-rl data convert: " in stderr, (argv, stderr)
    assert not (tmp_path / "o.jsonl").exists()

    (tmp_path / "none.jsonl").write_text(json.dumps({"conversations": []}) + "\n")
    code, stdout, stderr = convert(
        capsys, "llava", tmp_path / "none.jsonl", tmp_path / "o.jsonl", "--env", "mcq"
    )
    assert code == 1 and "0 written, 1 skipped" in stdout and ":1: conversations: required" in stderr
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("flag", ["--prompt-field", "--image-field"])
def test_unknown_column_is_a_usage_error(tmp_path, capsys, flag):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"question": ["q"], "answer": ["A"]}), tmp_path / "t.parquet")
    code, _, stderr = convert(capsys, "parquet", tmp_path / "t.parquet", tmp_path / "t.jsonl", flag, "nope")
    assert code == 2 and "no column 'nope'" in stderr


def test_docs_example_rows_validate_and_fit_their_environment(tmp_path):
    """docs/data.md's example rows (its json blocks that have an env) are valid rows their environment
    prepares; their media paths are created here as placeholder files."""
    from omni_rl.data.schema import validate_row

    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text(encoding="utf-8")
    rows = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.S)]
    rows = [row for row in rows if "env" in row]
    assert {row["env"] for row in rows} >= {"mcq", "math", "asr", "gui_grounding", "gui_agent", "doc_qa"}
    for row in rows:
        prompt = validate_row(row, base_dir=str(tmp_path), check_media=False)
        urls = [p.url for p in prompt.media_parts()] + [
            o["image"] for o in row.get("meta", {}).get("observations", [])
        ]
        for url in urls:
            (tmp_path / url).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / url).touch()
        if prompt.is_preference:
            assert row["chosen"] and row["rejected"]
        else:
            environments.get(prompt.env).make_prompt(prompt)
    assert sum(p.get("env") == "mcq" and "chosen" in p for p in rows) == 1
