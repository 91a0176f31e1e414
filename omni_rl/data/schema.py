"""Typed dataset rows and their validation.

A row: {"id", "env", "messages": [...], "target": ..., "meta"?: {...}}. `messages` are OpenAI-style chat
messages; a message's content is a string or a list of parts {"type": "text", "text": ...} and
{"type": "image_url" | "audio_url" | "video_url", "<type>": {"url": ...}} (the format vLLM's chat API takes;
the url object may also be the bare URL string). A media URL is a path relative to the dataset file, a
file:// URL or a data: URL. DPO rows carry "chosen" and "rejected" assistant messages (a message or a list
of them, text only) instead of "target". `null` counts as absent everywhere (Arrow fills missing struct
fields with nulls). Other top-level fields are moved into `meta` rather than dropped. `messages`, `chosen`,
`rejected` and `meta` may also be JSON-encoded strings (handy for parquet).
Errors are `RowError(field, reason)`, the field written as a path such as messages[0].content[1].image_url.url.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omni_rl.media.params import MediaParams
from omni_rl.media.probe import check_part
from omni_rl.media.types import MediaError, MediaRef, Modality

ROLES = ("system", "user", "assistant", "tool")
MEDIA_TYPES: dict[str, Modality] = {"image_url": "image", "audio_url": "audio", "video_url": "video"}
_ROW_KEYS = {"id", "env", "messages", "target", "meta", "chosen", "rejected"}
_MESSAGE_KEYS = {"role", "content", "name", "tool_call_id"}
_URL_EXTRA_KEYS = {"detail", "uuid"}  # accepted by OpenAI / vLLM, no effect here


class RowError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class TextPart:
    text: str

    def to_openai(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True)
class MediaPart:
    modality: Modality
    url: str
    base_dir: str | None = None  # where a relative path is resolved (the dataset file's folder)

    def to_openai(self) -> dict[str, Any]:
        kind = f"{self.modality}_url"
        return {"type": kind, kind: {"url": self.url}}


Part = TextPart | MediaPart


@dataclass(frozen=True)
class Message:
    role: str
    content: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    def to_openai(self) -> dict[str, Any]:
        return {"role": self.role, "content": [p.to_openai() for p in self.content]}


@dataclass(frozen=True)
class Prompt:
    id: str
    env: str
    messages: tuple[Message, ...]
    target: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    chosen: tuple[Message, ...] | None = None
    rejected: tuple[Message, ...] | None = None
    origin: str = ""  # "file:line" or "file row N", for messages about this prompt

    @property
    def is_preference(self) -> bool:
        return self.chosen is not None

    def media_parts(self) -> list[MediaPart]:
        return [p for m in self.messages for p in m.content if isinstance(p, MediaPart)]


@dataclass(frozen=True)
class Sample:
    """One of the G samples of a prompt: it holds references to the prompt's media, never copies."""

    prompt: Prompt
    index: int
    media: tuple[MediaRef, ...]


def validate_row(
    row: Any, *, base_dir: str | None = None, check_media: bool = True, params: MediaParams | None = None
) -> Prompt:
    """A Prompt from a raw row, or RowError naming the first bad field. `check_media` resolves every media
    URL and checks it as ``params.probe`` says (default: exists, within max_bytes, readable header within
    the limits; see ``omni_rl.media.probe``)."""
    if not isinstance(row, Mapping):
        raise RowError("<row>", f"must be an object, got {type(row).__name__}")
    from omni_rl.data import nemo_gym  # imports RowError from here

    if nemo_gym.is_nemo_gym_row(row):
        row = nemo_gym.convert_row(row)
    row = {k: v for k, v in row.items() if v is not None}
    prompt_id = _id(row)
    env = row.get("env")
    if not isinstance(env, str) or not env.strip():
        raise RowError("env", "required: a non-empty string naming the environment")
    meta = _json_field(row, "meta", dict, "an object", default={})
    extras = {k: v for k, v in row.items() if k not in _ROW_KEYS}
    if clash := sorted(set(extras) & set(meta)):
        raise RowError("meta", f"extra top-level field(s) {clash} also present in meta")
    params = params or MediaParams()
    messages = _messages(_json_field(row, "messages", list, "a list of messages"), "messages", base_dir)
    if not messages:
        raise RowError("messages", "must not be empty")
    chosen = _completion(row, "chosen", base_dir)
    rejected = _completion(row, "rejected", base_dir)
    if (chosen is None) != (rejected is None):
        raise RowError(
            "rejected" if chosen is not None else "chosen", "a DPO row needs both chosen and rejected"
        )
    if chosen is None and "target" not in row:
        raise RowError("target", "required (or chosen and rejected for a DPO row)")
    prompt = Prompt(
        id=prompt_id,
        env=env,
        messages=messages,
        target=row.get("target"),
        meta={**meta, **extras},
        chosen=chosen,
        rejected=rejected,
    )
    if check_media:
        _check_media(prompt, params)
    return prompt


def _id(row: dict[str, Any]) -> str:
    value = row.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowError("id", f"required: a string or integer, got {_kind(value)}")
    text = str(value)
    if not text.strip():
        raise RowError("id", "must not be empty")
    return text


def _json_field(row: dict[str, Any], name: str, kind: type, what: str, default: Any = None) -> Any:
    value = row.get(name, default)
    if isinstance(value, str) and kind is not str:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowError(name, f"a string that is not valid JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(value, kind):
        raise RowError(name, f"must be {what}, got {_kind(value)}")
    return value


def _messages(raw: list[Any], path: str, base_dir: str | None) -> tuple[Message, ...]:
    return tuple(_message(m, f"{path}[{i}]", base_dir) for i, m in enumerate(raw))


def _message(raw: Any, path: str, base_dir: str | None) -> Message:
    if not isinstance(raw, Mapping):
        raise RowError(path, f"a message must be an object, got {_kind(raw)}")
    raw = {k: v for k, v in raw.items() if v is not None}
    if unknown := sorted(set(raw) - _MESSAGE_KEYS):
        raise RowError(path, f"unknown key(s) {unknown}; a message has {sorted(_MESSAGE_KEYS)}")
    role = raw.get("role")
    if role not in ROLES:
        raise RowError(f"{path}.role", f"must be one of {list(ROLES)}, got {role!r}")
    content = raw.get("content")
    if isinstance(content, str):
        return Message(role, (TextPart(content),))
    if not isinstance(content, list) or not content:
        raise RowError(
            f"{path}.content", f"must be a string or a non-empty list of parts, got {_kind(content)}"
        )
    parts = tuple(_part(p, f"{path}.content[{i}]", base_dir) for i, p in enumerate(content))
    if role == "assistant" and any(isinstance(p, MediaPart) for p in parts):
        raise RowError(f"{path}.content", "assistant messages cannot carry media")
    return Message(role, parts)


def _part(raw: Any, path: str, base_dir: str | None) -> Part:
    if not isinstance(raw, Mapping):
        raise RowError(path, f"a content part must be an object, got {_kind(raw)}")
    raw = {k: v for k, v in raw.items() if v is not None}
    kind = raw.get("type")
    if kind == "text":
        if not isinstance(raw.get("text"), str):
            raise RowError(f"{path}.text", f"must be a string, got {_kind(raw.get('text'))}")
        _no_extra(raw, {"type", "text"}, path)
        return TextPart(raw["text"])
    if kind not in MEDIA_TYPES:
        raise RowError(f"{path}.type", f"must be one of {['text', *MEDIA_TYPES]}, got {kind!r}")
    _no_extra(raw, {"type", kind}, path)
    spec = raw.get(kind)
    if isinstance(spec, Mapping):
        spec = {k: v for k, v in spec.items() if v is not None}
        _no_extra(spec, {"url", *_URL_EXTRA_KEYS}, f"{path}.{kind}")
        url, url_path = spec.get("url"), f"{path}.{kind}.url"
    else:
        url, url_path = spec, f"{path}.{kind}"
    if not isinstance(url, str) or not url.strip():
        raise RowError(url_path, f"must be a non-empty URL string, got {_kind(url)}")
    return MediaPart(MEDIA_TYPES[kind], url, base_dir)


def _no_extra(raw: Mapping[str, Any], allowed: set[str], path: str) -> None:
    if unknown := sorted(set(raw) - allowed):
        raise RowError(path, f"unknown key(s) {unknown}; expected {sorted(allowed)}")


def _completion(row: dict[str, Any], name: str, base_dir: str | None) -> tuple[Message, ...] | None:
    if name not in row:
        return None
    raw = _json_field(row, name, object, "a message or a list of messages")
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise RowError(name, "must not be empty")
    messages = _messages(items, name, base_dir) if isinstance(raw, list) else (_message(raw, name, base_dir),)
    for i, message in enumerate(messages):
        where = f"{name}[{i}]" if isinstance(raw, list) else name
        if message.role != "assistant":
            raise RowError(f"{where}.role", f"must be 'assistant', got {message.role!r}")
    return messages


def _check_media(prompt: Prompt, params: MediaParams) -> None:
    located = [
        (f"messages[{i}].content[{j}].{part.modality}_url", part)
        for i, message in enumerate(prompt.messages)
        for j, part in enumerate(message.content)
        if isinstance(part, MediaPart)
    ]
    for path, part in located:
        try:
            check_part(part, params)
        except MediaError as exc:
            raise RowError(path, f"{type(exc).__name__}: {exc}") from exc


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
