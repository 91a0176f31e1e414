"""Image decoding: PIL, EXIF orientation applied, RGB, resized to the model's dynamic-resolution patch grid.

Grid rule (the one transformers' Nemotron Omni image processor applies, so token counts agree):
1. native grid per side: `round(side / patch + 0.5)`, i.e. floor(side / patch) + 1 for a fractional quotient,
   and for an exact multiple `n` the value n (n even) or n + 1 (n odd: Python rounds half to even);
2. if the grid holds more than `max_patches`, both sides are scaled by sqrt(max / area) and floored;
3. if it then holds fewer than `min_patches` (and max > min), both sides are scaled up by sqrt(min / area)
   and ceiled;
4. each side is rounded to a multiple of the pixel-shuffle merge size (1 / downsample_ratio): up when the
   area stays within `max_patches`, otherwise down (never below one merge block); height first.
The image is then resized (bicubic) to (grid_h * patch, grid_w * patch) pixels: native aspect ratio up to
the rounding, and the model sees grid_h * grid_w / merge**2 tokens.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from omni_rl.media.params import ImageParams
from omni_rl.media.types import DecodedImage, MediaDecodeError, MediaTooLargeError

_EXIF_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # these swap width and height


def patch_grid(height: int, width: int, params: ImageParams) -> tuple[int, int]:
    """(grid_h, grid_w) in patches for an image of `height` x `width` pixels; see the module docstring."""
    p, m = params.patch_size, params.merge_size
    lo, hi = params.min_patches, params.max_patches
    gh, gw = round(height / p + 0.5), round(width / p + 0.5)

    shrink = min(math.sqrt(hi / (gh * gw)), 1.0)
    gh, gw = max(1, math.floor(shrink * gh)), max(1, math.floor(shrink * gw))
    if hi > lo and gh * gw < lo:
        grow = math.sqrt(lo / (gh * gw))
        gh, gw = math.ceil(grow * gh), math.ceil(grow * gw)

    if gh % m:
        gh = gh + m - gh % m if (gh + m - gh % m) * gw <= hi else max(m, gh - gh % m)
    if gw % m:
        gw = gw + m - gw % m if gh * (gw + m - gw % m) <= hi else max(m, gw - gw % m)
    return gh, gw


def probe_image(data: bytes, params: ImageParams, label: str) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header only (no pixel decode)."""
    with _open(data, params, label) as img:
        width, height = img.size
        try:  # PNG keeps EXIF after the image data, so this may read (and trip over) the whole file
            exif = img.getexif()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise MediaDecodeError(label, f"corrupt or truncated image data: {exc}") from exc
        if exif.get(_EXIF_ORIENTATION) in _TRANSPOSED_ORIENTATIONS:
            width, height = height, width
    return width, height


def decode_image(data: bytes, params: ImageParams, label: str) -> DecodedImage:
    with _open(data, params, label) as img:
        try:
            img.load()
            upright = ImageOps.exif_transpose(img)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise MediaDecodeError(label, f"corrupt or truncated image data: {exc}") from exc
    rgb = _to_rgb(upright)
    source_size = rgb.size
    if params.resize:
        gh, gw = patch_grid(rgb.height, rgb.width, params)
        target = (gw * params.patch_size, gh * params.patch_size)
        if rgb.size != target:
            rgb = rgb.resize(target, Image.Resampling.BICUBIC)
    pixels = np.array(rgb, dtype=np.uint8)
    pixels.setflags(write=False)  # shared by reference: nobody may write into it
    return DecodedImage(pixels=pixels, source_size=source_size)


def _open(data: bytes, params: ImageParams, label: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise MediaTooLargeError(label, f"image too large: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise MediaDecodeError(label, "not a recognised image format (corrupt or not an image)") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaDecodeError(label, f"corrupt image header: {exc}") from exc
    width, height = img.size
    if width * height > params.max_source_pixels:
        img.close()
        raise MediaTooLargeError(
            label,
            f"{width}x{height} = {width * height} pixels > max_source_pixels={params.max_source_pixels}",
        )
    if width < 1 or height < 1:
        img.close()
        raise MediaDecodeError(label, f"empty image ({width}x{height})")
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB; transparent pixels are composited onto white rather than dropped to black."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    background.alpha_composite(rgba)
    return background.convert("RGB")
