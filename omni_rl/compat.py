"""Run-time work-arounds for bugs in pinned libraries. Applied explicitly (``apply_patches()``, called
by model loading and the tiny-model builder); idempotent; never edits site-packages.

transformers 5.19 (also 5.23), ``NemotronH_Omni_Reasoning_V3``: ``get_video_features`` returns
``pooler_output`` as one stacked Tensor ``(tubelets, tokens, hidden)`` while ``forward`` does
``torch.cat(pooler_output)``, which raises ``TypeError: cat(): argument 'tensors' ... must be tuple of
Tensors, not Tensor`` for every video prompt. The patch splits the Tensor into a tuple of tubelets,
which is what ``forward`` expects; a fixed library (tuple already) passes through unchanged.
tests/test_compat.py asserts that the bug still reproduces on the original method, so we notice when
a transformers upgrade fixes it and this module can go.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

_PATCHED_ATTR = "__omni_rl_patched__"
ORIGINALS: dict[str, Callable[..., Any]] = {}  # qualified name -> unpatched function


def _patch_video_features() -> None:
    from transformers import NemotronH_Omni_Reasoning_V3

    original = NemotronH_Omni_Reasoning_V3.get_video_features
    if getattr(original, _PATCHED_ATTR, False):
        return

    # functools.wraps keeps the signature, which generate() inspects
    @functools.wraps(original)
    def get_video_features(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        pooled = getattr(out, "pooler_output", None)
        if hasattr(pooled, "unbind"):  # a Tensor: one entry per tubelet
            out.pooler_output = tuple(pooled.unbind(0))
        return out

    setattr(get_video_features, _PATCHED_ATTR, True)
    ORIGINALS["NemotronH_Omni_Reasoning_V3.get_video_features"] = original
    NemotronH_Omni_Reasoning_V3.get_video_features = get_video_features


def apply_patches() -> None:
    """Install all work-arounds (safe to call many times)."""
    _patch_video_features()


def keep_ray_on_loopback() -> dict[str, str]:
    """Ray 2.60 on Linux: a local ``ray.init()`` binds the GCS, raylet and worker ports to every interface
    and rewrites a 127.0.0.1 node address to the machine's routable one (``services.get_node_ip_address``
    asks the network unless ``ray_constants.ENABLE_RAY_CLUSTER`` is false). That constant is read from
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` when ray is imported; the processes ``ray.init`` spawns read the
    same variable. So: set the variable for the children, the constant for this (already importing)
    driver, and ask for 127.0.0.1. Returns the ``ray.init`` keyword arguments.
    tests/test_cluster_loopback.py shows Ray's default and checks every listening port with this."""
    import ray._private.ray_constants as ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    return {"_node_ip_address": "127.0.0.1"}
