"""NeMo Gym dataset rows (0.7.0 schema) as our rows.

A NeMo Gym row is ``{"responses_create_params": {...OpenAI Responses create params...}, ...verifier
fields}`` (e.g. ``options``, ``expected_answer``, ``max_dist``, ``metadata``). It becomes:

- ``messages``: ``responses_create_params.input`` (a string, or messages whose ``content`` is a string or
  a list of parts: ``input_text`` / ``output_text``, ``input_image`` (``image_url``: a data URI or a path),
  ``input_video`` (``video_url`` or ``video``), ``input_audio`` (``{data, format}``)); ``developer`` is
  read as ``system``; ``instructions`` becomes the system prompt (joined before an existing system message's text).
- audio in ``responses_create_params.metadata``: ``audio_data`` (a data URI), ``audio_path`` or
  ``audio_paths`` (mutually exclusive, as NeMo Gym's vLLM model server reads them), put first in the last
  user message. Relative paths resolve against the dataset file's folder, like every media path here.
- ``target``: the verifier fields (every top-level field but ``responses_create_params``).
- ``meta["nemo_gym"]["responses_create_params"]``: the create params as given (what ``/verify`` gets).
- ``meta["sampling"]``: ``temperature``, ``top_p`` and ``max_output_tokens`` (as ``max_tokens``) when set.
- ``id``: the row's ``id``, ``uuid``, ``sample_id`` or ``task_id`` (first string or integer found), else a
  hash of the row's content; ``env``: ``"nemo_gym"`` (a mix entry names it anyway).

Data-URI media reach the MediaStore like files: keyed by a hash of their bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from omni_rl.data.schema import RowError

ENV_NAME = "nemo_gym"
META_KEY = "nemo_gym"
PARAMS_KEY = "responses_create_params"
ID_FIELDS = ("id", "uuid", "sample_id", "task_id")
AUDIO_KEYS = ("audio_data", "audio_path", "audio_paths")
_TEXT_PARTS = ("input_text", "output_text")
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def is_nemo_gym_row(row: Any) -> bool:
    return isinstance(row, Mapping) and PARAMS_KEY in row and "messages" not in row


def convert_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Our row dict for a NeMo Gym row (see the module docstring); RowError names the field at fault."""
    params = row[PARAMS_KEY]
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError as exc:
            raise RowError(PARAMS_KEY, f"a string that is not valid JSON ({exc.msg})") from exc
    if not isinstance(params, Mapping):
        raise RowError(PARAMS_KEY, f"must be an object, got {type(params).__name__}")
    messages = _messages(params)
    _add_audio(messages, params.get("metadata"))
    fields = {k: v for k, v in row.items() if k != PARAMS_KEY}
    return {
        "id": _row_id(row),
        "env": ENV_NAME,
        "messages": messages,
        "target": fields,
        "meta": {META_KEY: {PARAMS_KEY: dict(params)}, **_sampling(params)},
    }


def _row_id(row: Mapping[str, Any]) -> str | int:
    for key in ID_FIELDS:
        value = row.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return value
    digest = hashlib.blake2b(json.dumps(row, sort_keys=True, default=str).encode(), digest_size=8)
    return f"gym-{digest.hexdigest()}"


def _messages(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = params.get("input")
    where = f"{PARAMS_KEY}.input"
    if isinstance(raw, str):
        messages = [{"role": "user", "content": raw}]
    elif isinstance(raw, list) and raw:
        messages = [_message(item, f"{where}[{i}]") for i, item in enumerate(raw)]
    else:
        raise RowError(where, "required: a string or a non-empty list of messages")
    instructions = params.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise RowError(f"{PARAMS_KEY}.instructions", "must be a string")
        first = messages[0]
        if first["role"] == "system" and isinstance(first["content"], str):  # one system message
            messages[0] = {"role": "system", "content": f"{instructions}\n\n{first['content']}"}
        else:
            messages.insert(0, {"role": "system", "content": instructions})
    return messages


def _message(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise RowError(where, f"must be a message object, got {type(item).__name__}")
    kind = item.get("type", "message")
    if kind != "message":
        raise RowError(
            f"{where}.type",
            f"{kind!r} items are not mapped (only messages: tool calls and reasoning items belong to "
            "multi-turn agent rollouts)",
        )
    role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise RowError(f"{where}.role", f"must be one of {sorted(_ROLES)}, got {item.get('role')!r}")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list) or not content:
        raise RowError(f"{where}.content", "must be a string or a non-empty list of parts")
    return {"role": role, "content": [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]}


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, Mapping):
        raise RowError(where, f"must be a content part object, got {type(part).__name__}")
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        text = part.get("text")
        if not isinstance(text, str):
            raise RowError(f"{where}.text", "must be a string")
        return {"type": "text", "text": text}
    if kind == "input_image":
        if part.get("image_url") is None and part.get("file_id") is not None:
            raise RowError(f"{where}.file_id", "OpenAI file ids cannot be read here; give image_url")
        return _media("image", part.get("image_url"), f"{where}.image_url")
    if kind == "input_video":
        key = "video_url" if "video_url" in part else "video"
        return _media("video", part.get(key), f"{where}.{key}")
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
            raise RowError(f"{where}.input_audio", "must be {data: base64, format: wav|mp3|...}")
        fmt = str(audio.get("format") or "wav")
        return _media("audio", f"data:audio/{fmt};base64,{audio['data']}", f"{where}.input_audio")
    raise RowError(
        f"{where}.type",
        f"must be one of {[*_TEXT_PARTS, 'input_image', 'input_video', 'input_audio']}, got {kind!r}",
    )


def _media(modality: str, source: Any, where: str) -> dict[str, Any]:
    url = source.get("url") if isinstance(source, Mapping) else source
    if not isinstance(url, str) or not url.strip():
        raise RowError(where, "must be a non-empty URL: a data URI or a path")
    kind = f"{modality}_url"
    return {"type": kind, kind: {"url": url}}


def _add_audio(messages: list[dict[str, Any]], metadata: Any) -> None:
    """Audio named in ``metadata`` goes first in the last user message, as NeMo Gym's vLLM server does."""
    if metadata is None:
        return
    where = f"{PARAMS_KEY}.metadata"
    if not isinstance(metadata, Mapping):
        raise RowError(where, f"must be an object, got {type(metadata).__name__}")
    present = [k for k in AUDIO_KEYS if metadata.get(k)]
    if len(present) > 1:
        raise RowError(where, f"audio keys are mutually exclusive, got {present}")
    if not present:
        return
    key = present[0]
    value = metadata[key]
    if key == "audio_paths":
        if not isinstance(value, list):
            raise RowError(f"{where}.audio_paths", f"must be a list of paths, got {type(value).__name__}")
        urls = value
    else:
        urls = [value]
    parts = [_media("audio", url, f"{where}.{key}") for url in urls]
    for message in reversed(messages):
        if message["role"] == "user":
            content = message["content"]
            text = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
            message["content"] = parts + text
            return
    messages.append({"role": "user", "content": parts})


def _sampling(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("max_tokens", "max_output_tokens"),
    ):
        value = params.get(theirs)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RowError(f"{PARAMS_KEY}.{theirs}", f"must be a number, got {type(value).__name__}")
        out[ours] = value
    return {"sampling": out} if out else {}


def strip_inline_media(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the create params without inline (data URI) media, for rollout dumps: input parts whose
    URL is a data URI are dropped, and so is ``metadata.audio_data``. Paths are kept."""
    out = dict(params)
    raw = out.get("input")
    if isinstance(raw, list):
        items = []
        for item in raw:
            if isinstance(item, Mapping) and isinstance(item.get("content"), list):
                kept = [p for p in item["content"] if not _inline_media(p)]
                item = {**item, "content": kept}
            items.append(item)
        out["input"] = items
    metadata = out.get("metadata")
    if isinstance(metadata, Mapping) and str(metadata.get("audio_data", "")).startswith("data:"):
        out["metadata"] = {k: v for k, v in metadata.items() if k != "audio_data"}
    return out


def _inline_media(part: Any) -> bool:
    if not isinstance(part, Mapping):
        return False
    if part.get("type") == "input_audio":
        return True
    for key in ("image_url", "video_url", "video"):
        source = part.get(key)
        url = source.get("url") if isinstance(source, Mapping) else source
        if isinstance(url, str) and url.startswith("data:"):
            return True
    return False
