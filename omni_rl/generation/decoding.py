"""The decode loop of the torch backend: prefill each prompt once, copy its cache G times, sample.

Prompts of one batch are left-padded and prefilled in one forward (media encoders included); the
hybrid cache (attention keys/values, mamba conv and SSM states) is then indexed so that each prompt's
state is repeated once per sample, and all samples decode together, one token per forward. Rows that
finish leave the batch (the cache is indexed again), so long samples do not drag short ones.

Left padding is exact for NemotronH: its attention has no positional encoding (only the mask sees the
padding) and its mamba layers zero the padded positions before and after the convolution, so the
recurrent state of a padded row starts from zero exactly where its prompt starts (tests compare
batched with unbatched log-probs). That needs the mamba input projection to have no bias
(``use_bias=False``, NemotronH's default): a bias reaches the convolution from the padded positions
(measured: 0.08 log-prob error), so the backend then batches only prompts of equal length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from omni_rl.generation.sampling import RowSpec, SamplingState, StopWatcher
from omni_rl.models.batching import EncodedSample, collate
from omni_rl.training.router_replay import RouteRecorder


@dataclass
class Row:
    """One sample being generated: its prompt (index in the batch), limits and what it produced."""

    prompt: int
    spec: RowSpec
    max_new: int
    stop_ids: frozenset[int]
    watcher: StopWatcher
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    model_logprobs: list[float] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    routes: list[torch.Tensor] = field(default_factory=list)  # [tokens, moe_layers, k] per forward

    def add(self, token: int, logprob: float, model_logprob: float) -> bool:
        """Record a sampled token; True when the row is finished."""
        self.token_ids.append(token)
        self.logprobs.append(logprob)
        self.model_logprobs.append(model_logprob)
        if token in self.stop_ids:
            self.finish_reason, self.stop_reason = "stop", token
        elif (stop := self.watcher.hit(self.token_ids)) is not None:
            self.finish_reason, self.stop_reason = "stop", stop
        elif len(self.token_ids) >= self.max_new:
            self.finish_reason = "length"
        return self.finish_reason is not None


def left_padded(encoded: Sequence[EncodedSample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt ids (P, L) left-padded with ``pad_id`` and the matching attention mask."""
    length = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    for i, sample in enumerate(encoded):
        n = len(sample.input_ids)
        ids[i, length - n :] = torch.tensor(sample.input_ids, dtype=torch.long)
        mask[i, length - n :] = 1
    return ids, mask


def prefill(model: nn.Module, encoded: Sequence[EncodedSample], pad_id: int):
    """One forward over the prompts: last-position logits (P, V), the cache and the attention mask."""
    device = next(model.parameters()).device
    media = collate(encoded, pad_id).to(device, model.dtype).media  # media merged as for training
    ids, mask = left_padded(encoded, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    out = model(input_ids=ids, attention_mask=mask, **media, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    cached = cache.get_seq_length()
    if cached and cached != ids.shape[1]:  # video token pruning shortened the prompts inside forward
        if len(encoded) != 1:
            raise RuntimeError("video token pruning changes prompt lengths: prefill one prompt at a time")
        mask = torch.ones((1, cached), dtype=torch.long, device=device)
    return out.logits[:, -1], cache, mask


def decode(
    model: nn.Module,
    encoded: Sequence[EncodedSample],
    rows: Sequence[Row],
    pad_id: int,
    banned: Sequence[int],
    recorder: RouteRecorder | None = None,
) -> None:
    """Generate every row (in place) from the prompts ``encoded`` (``row.prompt`` indexes them).
    ``recorder`` (inside its context): each row's ``routes`` get the experts chosen for its prompt
    tokens and for every completion token fed back (all but the last)."""
    logits, cache, mask = prefill(model, encoded, pad_id)
    device = logits.device
    if recorder is not None:
        prompt_routes = recorder.take()
        prompt_routes = prompt_routes.view(*mask.shape, *prompt_routes.shape[1:])
        for row in rows:
            row.routes.append(prompt_routes[row.prompt][mask[row.prompt].bool().cpu()])
    expand = torch.tensor([r.prompt for r in rows], device=device)
    cache.reorder_cache(expand)  # index_select on every layer's state: G copies of each prompt's cache
    mask, logits = mask[expand], logits[expand]
    state = SamplingState([r.spec for r in rows], logits.shape[-1], banned, device)
    active = list(range(len(rows)))
    decoder = model.language_model
    padded = not bool(mask.all())  # without padding no mask is needed (saves building one per step)
    while True:
        tokens, logprobs, model_logprobs = state.step(logits)
        keep = [
            pos
            for pos, (i, token, lp, mlp) in enumerate(
                zip(active, tokens.tolist(), logprobs.tolist(), model_logprobs.tolist(), strict=True)
            )
            if not rows[i].add(token, lp, mlp)
        ]
        if not keep:
            return
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.reorder_cache(index)
            mask, tokens = mask[index], tokens[index]
            state.select(index)
            active = [active[pos] for pos in keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        out = decoder(
            input_ids=tokens[:, None],
            attention_mask=mask if padded else None,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1]
        if recorder is not None:
            step_routes = recorder.take()
            for pos, i in enumerate(active):
                rows[i].routes.append(step_routes[pos : pos + 1])
