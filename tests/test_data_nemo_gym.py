"""NeMo Gym dataset rows load as prompts (omni_rl/data/nemo_gym.py): input forms, parts, audio in metadata,
instructions, sampling, ids, errors naming the field, and data-URI media deduplicated by content."""

from __future__ import annotations

import base64
import json

import pytest

from omni_rl.data.loading import load_prompts
from omni_rl.data.nemo_gym import strip_inline_media
from omni_rl.data.schema import MediaPart, RowError, TextPart, validate_row
from omni_rl.media.store import MediaStore
from tests.media_fixtures import image_bytes, write_audio


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


@pytest.fixture(scope="module")
def png() -> str:
    return data_uri("image/png", image_bytes(32, 32))


def parts_of(message):
    return [(type(p).__name__, getattr(p, "modality", None)) for p in message.content]


def test_string_input_and_verifier_fields_as_target():
    row = {"responses_create_params": {"input": "What is 2+2?"}, "expected_answer": "4", "uuid": "u1"}
    prompt = validate_row(row)
    assert prompt.id == "u1" and prompt.env == "nemo_gym"
    assert [(m.role, m.text) for m in prompt.messages] == [("user", "What is 2+2?")]
    assert prompt.target == {"expected_answer": "4", "uuid": "u1"}
    assert prompt.meta["nemo_gym"]["responses_create_params"] == {"input": "What is 2+2?"}
    assert "sampling" not in prompt.meta


def test_parts_roles_instructions_and_sampling(png, tmp_path):
    row = {
        "responses_create_params": {
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Answer with coordinates."},
                {"role": "user", "type": "message", "content": [
                    {"type": "input_image", "image_url": png, "detail": "auto"},
                    {"type": "input_text", "text": "Where is the red band?"},
                    {"type": "input_video", "video_url": {"url": "clip.mp4"}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                ]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
                {"role": "user", "content": "Now answer."},
            ],
            "temperature": 0.7,
            "top_p": 0.9,
            "max_output_tokens": 128,
        },
        "expected_answer": "0.5,0.1",
    }  # fmt: skip
    prompt = validate_row(row, base_dir=str(tmp_path), check_media=False)
    system, user, assistant, last = prompt.messages
    assert (system.role, system.text) == ("system", "Be brief.\n\nAnswer with coordinates.")
    assert parts_of(user) == [
        ("MediaPart", "image"), ("TextPart", None), ("MediaPart", "video"), ("MediaPart", "audio"),
    ]  # fmt: skip
    assert user.content[0] == MediaPart("image", png, str(tmp_path))
    assert user.content[2].url == "clip.mp4"
    assert user.content[3].url == "data:audio/wav;base64,UklGRg=="
    assert (assistant.role, assistant.text, last.text) == ("assistant", "ok", "Now answer.")
    assert prompt.meta["sampling"] == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 128}
    assert prompt.id.startswith("gym-")  # no id field: a hash of the row
    assert validate_row(row, check_media=False).id == prompt.id


@pytest.mark.parametrize(
    ("metadata", "urls"),
    [
        ({"audio_data": "data:audio/wav;base64,UklGRg=="}, ["data:audio/wav;base64,UklGRg=="]),
        ({"audio_path": "a.wav", "other": "kept"}, ["a.wav"]),
        ({"audio_paths": ["a.wav", "b.wav"]}, ["a.wav", "b.wav"]),
    ],
)
def test_audio_in_metadata_goes_first_in_the_last_user_message(metadata, urls):
    row = {
        "responses_create_params": {
            "input": [{"role": "system", "content": "Transcribe."}, {"role": "user", "content": "Go."}],
            "metadata": metadata,
        },
        "expected_answer": "hello",
    }
    prompt = validate_row(row, check_media=False)
    user = prompt.messages[-1]
    assert [p.url for p in user.content if isinstance(p, MediaPart)] == urls
    assert all(p.modality == "audio" for p in user.content[: len(urls)])
    assert user.content[-1] == TextPart("Go.")


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"input": []}, "responses_create_params.input", "a string or a non-empty list"),
        (
            {"input": [{"type": "function_call", "name": "f"}]},
            "responses_create_params.input[0].type",
            "not mapped",
        ),
        (
            {"input": [{"role": "robot", "content": "x"}]},
            "responses_create_params.input[0].role",
            "must be one of",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "responses_create_params.input[0].content[0].type",
            "must be one of",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": ""}]}]},
            "responses_create_params.input[0].content[0].image_url",
            "non-empty URL",
        ),
        (
            {"input": "x", "metadata": {"audio_path": "a.wav", "audio_data": "data:audio/wav;base64,AA=="}},
            "responses_create_params.metadata",
            "mutually exclusive",
        ),
        (
            {"input": "x", "metadata": {"audio_paths": "a.wav"}},
            "responses_create_params.metadata.audio_paths",
            "list",
        ),
        ({"input": "x", "temperature": "hot"}, "responses_create_params.temperature", "must be a number"),
        ("{not json", "responses_create_params", "not valid JSON"),
    ],
)
def test_bad_rows_name_the_field(params, field, reason):
    with pytest.raises(RowError) as info:
        validate_row({"responses_create_params": params, "expected_answer": "A"}, check_media=False)
    assert info.value.field == field and reason in info.value.reason


def test_loader_reports_bad_gym_rows_by_line_and_checks_media(tmp_path, png):
    write_audio(tmp_path / "clip.wav", 16000, 0.5)
    rows = [
        {"responses_create_params": {"input": "a", "metadata": {"audio_path": "clip.wav"}}, "id": 1},
        {"responses_create_params": {"input": "b", "metadata": {"audio_path": "missing.wav"}}, "id": 2},
        {"responses_create_params": {"input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": png}, {"type": "input_text", "text": "c"}]}]}, "id": 3},
    ]  # fmt: skip
    path = tmp_path / "gym.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = load_prompts(path)
    assert [p.id for p in report.prompts] == ["1", "3"]
    assert [(i.index, i.field) for i in report.issues] == [(2, "messages[0].content[0].audio_url")]


def test_data_uri_media_are_stored_once_by_content(png):
    rows = [
        {"responses_create_params": {"input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": png}, {"type": "input_text", "text": f"q{i}"}]}]}, "id": i}
        for i in range(3)
    ]  # fmt: skip
    prompts = [validate_row(r) for r in rows]
    store = MediaStore(budget_bytes=1 << 26)
    refs = [store.put_many(p.media_parts(), count=2)[0] for p in prompts]
    assert len({r.key for r in refs}) == 1  # three rows, one decoded image
    total = store.stats()["total"]
    assert total["decodes"] == 1 and total["items"] == 1


def test_strip_inline_media_keeps_text_and_paths(png):
    params = {
        "input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": png}, {"type": "input_image", "image_url": "shot.png"},
            {"type": "input_text", "text": "q"}]}],
        "metadata": {"audio_data": "data:audio/wav;base64,AA==", "k": "v"},
    }  # fmt: skip
    out = strip_inline_media(params)
    assert out["input"][0]["content"] == params["input"][0]["content"][1:]
    assert out["metadata"] == {"k": "v"}
    assert params["metadata"]["audio_data"]  # the original is untouched
