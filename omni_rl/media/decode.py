"""One entry point per media part: resolve its URL, key it by content + decode parameters, decode it."""

from __future__ import annotations

import hashlib
from typing import Protocol

from omni_rl.media import sources
from omni_rl.media.audio import decode_audio
from omni_rl.media.image import decode_image
from omni_rl.media.params import MediaParams
from omni_rl.media.types import MODALITIES, DecodedMedia, MediaDecodeError, Modality
from omni_rl.media.video import decode_video


class MediaPartLike(Protocol):
    """What the media layer needs from a dataset media part (`omni_rl.data.schema.MediaPart` has it)."""

    @property
    def modality(self) -> Modality: ...

    @property
    def url(self) -> str: ...

    @property
    def base_dir(self) -> str | None: ...


def source_of(part: MediaPartLike, params: MediaParams | None = None) -> sources.Source:
    """The part's source; a path leaving its dataset's folder is refused unless params allow it."""
    if part.modality not in MODALITIES:
        raise MediaDecodeError(part.url[:48], f"unknown modality {part.modality!r}")
    allow = params.allow_outside_paths if params is not None else False
    return sources.resolve(part.url, part.base_dir, allow_outside=allow)


def media_key(content_digest: str, modality: Modality, params: MediaParams) -> str:
    """Key of a decoded item: blake2b over the content digest, the modality and the shaping parameters."""
    h = hashlib.blake2b(digest_size=20)
    for piece in (content_digest, modality, params.cache_params(modality)):
        h.update(piece.encode())
        h.update(b"\0")
    return f"{modality}:{h.hexdigest()}"


def key_of(part: MediaPartLike, params: MediaParams) -> tuple[str, str, sources.Source]:
    """(key, content digest, source) of a part; reads (and hashes) a file only once per version."""
    source = source_of(part, params)
    digest = sources.content_digest(source, params.max_bytes(part.modality))
    return media_key(digest, part.modality, params), digest, source


def decode_bytes(modality: Modality, data: bytes, params: MediaParams, label: str) -> DecodedMedia:
    if modality == "image":
        return decode_image(data, params.image, label)
    if modality == "audio":
        return decode_audio(data, params.audio, label)
    if modality == "video":
        return decode_video(data, params.video, params.audio, label)
    raise MediaDecodeError(label, f"unknown modality {modality!r}")


def decode_source(
    modality: Modality, source: sources.Source, params: MediaParams, expect_digest: str | None = None
) -> DecodedMedia:
    """Read and decode; with `expect_digest`, refuse bytes that changed since they were keyed."""
    data = sources.read_bytes(source, params.max_bytes(modality))
    if expect_digest is not None and sources.digest_bytes(data) != expect_digest:
        raise MediaDecodeError(source.label, "the file changed between hashing and decoding")
    return decode_bytes(modality, data, params, source.label)


def decode_part(part: MediaPartLike, params: MediaParams | None = None) -> DecodedMedia:
    """Decode without a store (offline tools, tests)."""
    params = params or MediaParams()
    return decode_source(part.modality, source_of(part, params), params)
