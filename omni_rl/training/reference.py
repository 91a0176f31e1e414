"""The KL reference on the trainer ranks themselves (no GPU of its own).

With LoRA the frozen base model *is* the reference: its log-probs are the policy's forward with the
adapters disabled (no second copy). Without LoRA each trainer rank holds a frozen copy of the initial
policy, sharded with FSDP2 exactly like the policy (1/N of the parameters per rank, no gradients, no
optimizer state), or a full copy when the ranks are plain replicas (CPU). ``omni-rl plan`` counts it
(``omni_rl.planning.plan``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from torch import nn

from omni_rl.training import distributed as dist_utils
from omni_rl.training.lora import adapters_disabled, has_lora

if TYPE_CHECKING:
    from omni_rl.training.trainer import PolicyTrainer


def frozen_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (weights, or the meta-device skeleton before a sharded load) that never trains."""
    reference = copy.deepcopy(model)
    reference.requires_grad_(False)
    return reference.train()  # same mode as the policy (dropout is already off), so the forward matches


@contextmanager
def scoring_model(trainer: PolicyTrainer, reference: bool) -> Iterator[nn.Module]:
    """The module whose log-probs are wanted: the policy, or the KL reference."""
    if not reference:
        yield trainer.model
        return
    if trainer.reference is not None:
        try:
            yield trainer.reference
        finally:
            if trainer.parallel == "fsdp":  # a forward without backward leaves the root gathered
                dist_utils.reshard(trainer.reference)
        return
    if has_lora(trainer.model):
        with adapters_disabled(trainer.model):
            yield trainer.model
        return
    raise RuntimeError(
        "no KL reference on this trainer: it is built when trainer.policy_loss.kl_coef > 0 (or is the "
        "LoRA base with trainer.lora)"
    )
