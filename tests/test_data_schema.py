"""Row validation: typed prompts from OpenAI-style rows; every bad row names its field and reason."""

from __future__ import annotations

import copy
import json

import pytest

from omni_rl.data.schema import MediaPart, Message, Prompt, RowError, TextPart, validate_row
from omni_rl.media.params import MediaParams


def _row(**over):
    row = {
        "id": "q1",
        "env": "mcq",
        "target": "B",
        "messages": [
            {"role": "system", "content": "Answer with a letter."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What colour?"},
                    {"type": "image_url", "image_url": {"url": "img/a.png"}},
                    {"type": "audio_url", "audio_url": {"url": "file:///data/a.wav"}},
                    {"type": "video_url", "video_url": "data:video/mp4;base64,AAAA"},
                ],
            },
        ],
    }
    row.update(over)
    return row


def test_valid_row_becomes_a_typed_prompt():
    prompt = validate_row(_row(meta={"split": "dev"}), base_dir="/ds", check_media=False)
    assert isinstance(prompt, Prompt) and prompt.id == "q1" and prompt.env == "mcq" and prompt.target == "B"
    assert prompt.messages[0] == Message("system", (TextPart("Answer with a letter."),))
    assert [p.modality for p in prompt.media_parts()] == ["image", "audio", "video"]
    assert prompt.media_parts()[0] == MediaPart("image", "img/a.png", "/ds")
    assert prompt.meta == {"split": "dev"} and not prompt.is_preference
    assert prompt.messages[1].to_openai()["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "img/a.png"},
    }


def test_integer_id_extra_fields_and_nulls():
    prompt = validate_row(_row(id=7, source="web", meta=None, chosen=None), check_media=False)
    assert prompt.id == "7" and prompt.meta == {"source": "web"} and prompt.chosen is None


def test_dpo_row_with_chosen_and_rejected():
    prompt = validate_row(
        _row(
            target=None,
            chosen={"role": "assistant", "content": "B"},
            rejected=[{"role": "assistant", "content": [{"type": "text", "text": "A"}]}],
        ),
        check_media=False,
    )
    assert prompt.is_preference and prompt.chosen[0].text == "B" and prompt.rejected[0].text == "A"


def test_json_encoded_columns_are_accepted():
    row = _row()
    row["messages"] = json.dumps(row["messages"])
    row["meta"] = '{"k": 1}'
    prompt = validate_row(row, check_media=False)
    assert len(prompt.media_parts()) == 3 and prompt.meta == {"k": 1}


def _mutate(path, value):
    row = _row()
    node = row
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return row


_DELETE = object()
_BAD = [
    (("id",), _DELETE, "id", "required: a string or integer"),
    (("id",), True, "id", "got bool"),
    (("env",), "", "env", "non-empty string"),
    (("target",), _DELETE, "target", "required"),
    (("messages",), [], "messages", "must not be empty"),
    (("messages",), "[oops", "messages", "not valid JSON"),
    (("messages",), {"role": "user"}, "messages", "must be a list of messages"),
    (("messages", 0, "role"), "robot", "messages[0].role", "must be one of"),
    (("messages", 0, "content"), [], "messages[0].content", "non-empty list of parts"),
    (("messages", 0, "contnet"), "typo", "messages[0]", "unknown key(s) ['contnet']"),
    (("messages", 1, "content", 0, "text"), 3, "messages[1].content[0].text", "must be a string"),
    (("messages", 1, "content", 1, "type"), "picture_url", "messages[1].content[1].type", "must be one of"),
    (
        ("messages", 1, "content", 1, "image_url"),
        {"url": ""},
        "messages[1].content[1].image_url.url",
        "non-empty",
    ),
    (
        ("messages", 1, "content", 1, "image_url"),
        {"uri": "x"},
        "messages[1].content[1].image_url",
        "unknown key",
    ),
    (("messages", 1, "content", 2), "a.wav", "messages[1].content[2]", "must be an object"),
    (("meta",), [1], "meta", "must be an object"),
]


@pytest.mark.parametrize(("path", "value", "field", "reason"), _BAD, ids=[b[2] + ":" + b[3] for b in _BAD])
def test_bad_rows_name_the_field(path, value, field, reason):
    with pytest.raises(RowError) as info:
        validate_row(_mutate(path, value), check_media=False)
    assert info.value.field == field
    assert reason in info.value.reason


def test_dpo_and_role_rules():
    with pytest.raises(RowError, match="rejected: a DPO row needs both"):
        validate_row(_row(chosen={"role": "assistant", "content": "B"}), check_media=False)
    with pytest.raises(RowError, match=r"chosen\.role: must be 'assistant'"):
        validate_row(_row(chosen={"role": "user", "content": "B"}, rejected="x"), check_media=False)
    bad = _row()
    bad["messages"].append(copy.deepcopy(bad["messages"][1]) | {"role": "assistant"})
    with pytest.raises(RowError, match=r"messages\[2\]\.content: assistant messages cannot carry media"):
        validate_row(bad, check_media=False)
    with pytest.raises(RowError, match=r"meta: extra top-level field\(s\) \['k'\] also present in meta"):
        validate_row(_row(k=1, meta={"k": 2}), check_media=False)
    with pytest.raises(RowError, match="<row>: must be an object"):
        validate_row([1, 2], check_media=False)


def test_media_check_names_field_and_path(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"x")
    row = _row()
    row["messages"][1]["content"] = row["messages"][1]["content"][:2]  # text + image only
    exists_only = MediaParams(probe="exists")
    prompt = validate_row(row, base_dir=str(tmp_path), params=exists_only)
    assert prompt.media_parts()[0].base_dir == str(tmp_path)
    with pytest.raises(
        RowError, match=r"a\.png: not a recognised image format"
    ):  # the default probes headers
        validate_row(row, base_dir=str(tmp_path))
    row["messages"][1]["content"][1]["image_url"]["url"] = "img/missing.png"
    with pytest.raises(RowError) as info:
        validate_row(row, base_dir=str(tmp_path))
    assert info.value.field == "messages[1].content[1].image_url"
    assert f"{tmp_path}/img/missing.png: no such file" in info.value.reason
    row["messages"][1]["content"][1]["image_url"]["url"] = "https://x.org/a.png"
    with pytest.raises(RowError, match="remote URLs are not supported"):
        validate_row(row, base_dir=str(tmp_path))
