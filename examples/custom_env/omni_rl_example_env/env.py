"""The ``stripes`` environment: an image of horizontal or vertical stripes and the question which;
the answer is a word, scored by this package's ``orientation`` verifier.

``StripesEnvironment.generate`` writes the dataset (JSONL rows and PNG images) that ``omni-rl train``
asks for with ``generate: {n, seed}`` and ``omni-rl make-data stripes OUT`` writes by hand.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import environments
from environments import Environment, EnvOptions, VerifierSpec
from environments.base import require_media
from omni_rl.data.schema import Prompt
from omni_rl_example_env.verifier import OrientationVerifier  # noqa: F401 - registers "orientation"

LABELS = ("horizontal", "vertical")
QUESTION = "Are the stripes in the image horizontal or vertical?"


@dataclass
class StripesOptions(EnvOptions):
    # also accept the start of the answer word ("h", "vert"): sets the verifier's min_prefix to 1
    lenient: bool = False


@environments.register("stripes")
class StripesEnvironment(Environment):
    """Example plug-in: are the stripes of a 64x64 image horizontal or vertical (answer in a word)."""

    Options = StripesOptions
    default_instruction = "Answer with one word: horizontal or vertical."

    def default_verifiers(self) -> list[VerifierSpec]:
        return [VerifierSpec("orientation", options={"min_prefix": 1 if self.options.lenient else 0})]

    def check(self, prompt: Prompt) -> None:
        require_media(prompt, "image")
        super().check(prompt)  # the verifier's target check: "horizontal" or "vertical"

    @classmethod
    def generate(cls, out_dir: str | Path, n: int, seed: int = 0) -> Path:
        """``n`` rows, half of each label, in ``OUT/stripes.jsonl``; images in ``OUT/stripes/``."""
        if not 1 <= n <= 100_000:
            raise ValueError(f"n must be in [1, 100000], got {n}")
        out, rng = Path(out_dir), np.random.default_rng(seed)
        (out / "stripes").mkdir(parents=True, exist_ok=True)
        labels = rng.permutation([LABELS[i % 2] for i in range(n)])
        rows = []
        for i, label in enumerate(labels):
            url = f"stripes/{i:06d}.png"
            stripes_image(str(label), rng).save(out / url, format="PNG", optimize=True)
            content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": QUESTION}]
            rows.append(
                {
                    "id": f"stripes-{seed}-{i:06d}",
                    "env": "stripes",
                    "messages": [{"role": "user", "content": content}],
                    "target": str(label),
                }
            )
        path = out / "stripes.jsonl"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a file
        return path


def stripes_image(label: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A random colour and its complement in stripes 4-16 pixels wide, across (horizontal) or down
    (vertical)."""
    a = rng.integers(0, 256, size=3)
    b = 255 - a
    width = int(rng.choice([4, 8, 16]))
    band = (np.arange(size) // width) % 2 == 0
    mask = np.broadcast_to(band[:, None] if label == "horizontal" else band[None, :], (size, size))
    pixels = np.where(mask[..., None], a, b).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")
