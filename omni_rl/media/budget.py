"""Pre-flight media token budget: how many tokens each prompt's media will take in the model's context.

Counts follow the installed transformers Nemotron Omni processor (the defaults below are its values):
- image: grid_h * grid_w / merge**2 tokens (merge = 1 / downsample_ratio = 2), plus `<img>` and `</img>`;
- video: frames grouped in tubelets of `video_temporal_patch` (2) frames; each tubelet is one tile of
  tile_h * tile_w / merge**2 tokens, plus `<img>`/`</img>` and a text label ("Frame 1 sampled at ...") whose
  token count depends on the tokenizer (`video_label_tokens`, an estimate);
- audio: Parakeet features, 1 + samples // hop (160 = 10 ms) mel frames, then log2(8) = 3 stride-2 conv
  stages, (n + 2 * ((k - 1) // 2) - k) // s + 1 each; plus `<so_start>` and `<so_end>`.
A prompt over budget is never truncated: it raises `TokenBudgetError` naming its id, or is skipped and
reported, as the caller chooses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from omni_rl.media.decode import MediaPartLike
from omni_rl.media.image import patch_grid
from omni_rl.media.params import MediaParams
from omni_rl.media.probe import probe_part
from omni_rl.media.types import DecodedAudio, DecodedImage, DecodedMedia, DecodedVideo, MediaError
from omni_rl.media.video import video_tile


@dataclass(frozen=True)
class TokenCosts:
    """Model constants of the token count (Nemotron Omni defaults); patch sizes live in the decode params."""

    image_wrapper_tokens: int = 2
    video_temporal_patch: int = 2
    video_wrapper_tokens: int = 2  # per tubelet
    video_label_tokens: int = 24  # per tubelet; tokenizer-dependent estimate
    audio_hop_length: int = 160
    audio_subsampling: int = 8
    audio_conv_kernel: int = 3
    audio_conv_stride: int = 2
    audio_wrapper_tokens: int = 2


class TokenBudgetError(ValueError):
    def __init__(self, prompt_id: str, tokens: int, budget: int) -> None:
        super().__init__(
            f"prompt {prompt_id!r}: media need {tokens} tokens > budget {budget} (not truncated)"
        )
        self.prompt_id, self.tokens, self.budget = prompt_id, tokens, budget


def image_tokens(width: int, height: int, params: MediaParams, costs: TokenCosts = TokenCosts()) -> int:
    gh, gw = patch_grid(height, width, params.image)
    return gh * gw // params.image.merge_size**2 + costs.image_wrapper_tokens


def video_tokens(
    num_frames: int, width: int, height: int, params: MediaParams, costs: TokenCosts = TokenCosts()
) -> int:
    return _tile_tokens(num_frames, *video_tile(height, width, params.video), params, costs)


def _tile_tokens(num_frames: int, tile_h: int, tile_w: int, params: MediaParams, costs: TokenCosts) -> int:
    tubelets = math.ceil(num_frames / costs.video_temporal_patch)
    per_tubelet = tile_h * tile_w // params.video.merge_size**2 + costs.video_wrapper_tokens
    return tubelets * (per_tubelet + costs.video_label_tokens)


def audio_tokens(num_samples: int, costs: TokenCosts = TokenCosts()) -> int:
    """Tokens for `num_samples` samples at the model rate (16 kHz)."""
    length = 1 + num_samples // costs.audio_hop_length
    k, s = costs.audio_conv_kernel, costs.audio_conv_stride
    for _ in range(int(math.log2(costs.audio_subsampling))):
        length = (length + 2 * ((k - 1) // 2) - k) // s + 1
    return max(1, length) + costs.audio_wrapper_tokens


def tokens_of(item: DecodedMedia, params: MediaParams, costs: TokenCosts = TokenCosts()) -> int:
    """Tokens of an already decoded item (exact up to the video label estimate)."""
    if isinstance(item, DecodedImage):
        width, height = item.source_size
        return image_tokens(width, height, params, costs)
    if isinstance(item, DecodedAudio):
        return audio_tokens(len(item.samples), costs)
    if isinstance(item, DecodedVideo):
        _, height, width, _ = item.frames.shape
        if params.video.resize:  # frames are already one tile in size
            patch = params.video.patch_size
            total = _tile_tokens(len(item.frames), height // patch, width // patch, params, costs)
        else:
            total = video_tokens(len(item.frames), width, height, params, costs)
        return total + (audio_tokens(len(item.audio.samples), costs) if item.audio is not None else 0)
    raise TypeError(f"not a decoded media item: {type(item).__name__}")


def estimate_part_tokens(part: MediaPartLike, params: MediaParams, costs: TokenCosts = TokenCosts()) -> int:
    """Tokens for one media part from headers and packet timestamps only (no pixel or sample decode)."""
    probe = probe_part(part, params)
    if probe.modality == "image":
        return image_tokens(probe.width, probe.height, params, costs)
    if probe.modality == "audio":
        return audio_tokens(round(probe.duration_s * params.audio.sample_rate), costs)
    plan = probe.video
    assert plan is not None
    total = video_tokens(len(plan.frame_pts), plan.width, plan.height, params, costs)
    if params.video.use_audio_in_video and plan.audio_duration_s is not None:
        total += audio_tokens(round(plan.audio_duration_s * params.audio.sample_rate), costs)
    return total


class PromptLike(Protocol):
    @property
    def id(self) -> str: ...

    def media_parts(self) -> Sequence[MediaPartLike]: ...


@dataclass
class BudgetReport:
    kept: list[PromptLike] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)  # prompt id -> media tokens (kept and over)
    over_budget: list[str] = field(default_factory=list)  # ids skipped for exceeding the budget
    media_errors: list[tuple[str, str]] = field(default_factory=list)  # (prompt id, error) skipped

    @property
    def skipped(self) -> int:
        return len(self.over_budget) + len(self.media_errors)


def check_token_budget(
    prompts: Iterable[PromptLike],
    max_media_tokens: int,
    params: MediaParams | None = None,
    costs: TokenCosts = TokenCosts(),
    on_over: Literal["raise", "skip"] = "raise",
) -> BudgetReport:
    """Estimate every prompt's media tokens; raise on the first prompt over budget, or skip and count it.

    Unreadable media raise (with the prompt id added as a note) or, with on_over="skip", are skipped too.
    """
    if on_over not in ("raise", "skip"):
        raise ValueError(f"on_over must be 'raise' or 'skip', got {on_over!r}")
    params = params or MediaParams()
    report = BudgetReport()
    for prompt in prompts:
        try:
            total = sum(estimate_part_tokens(part, params, costs) for part in prompt.media_parts())
        except MediaError as exc:
            if on_over == "raise":
                exc.add_note(f"while estimating the media tokens of prompt {prompt.id!r}")
                raise
            report.media_errors.append((prompt.id, str(exc)))
            continue
        report.tokens[prompt.id] = total
        if total > max_media_tokens:
            if on_over == "raise":
                raise TokenBudgetError(prompt.id, total, max_media_tokens)
            report.over_budget.append(prompt.id)
            continue
        report.kept.append(prompt)
    return report
