"""Pillow, used defensively: only the expected decoders, a pixel budget, no metadata out.

Everything here is synchronous and CPU-bound; :mod:`file_processor.processing` runs it on a
small thread pool (Pillow releases the GIL while it decodes, resamples and encodes).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from file_processor.sniffing import GIF, JPEG, PNG, WEBP

# Pillow only warns between MAX_IMAGE_PIXELS and twice that; here every warning is an error.
# The filter is process-wide on purpose: ``warnings.catch_warnings`` is not thread-safe, and the
# images are decoded on worker threads.
warnings.simplefilter("error", Image.DecompressionBombWarning)

PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", GIF: "GIF", WEBP: "WEBP"}

PROFILE_SIZES = {"large": 512, "medium": 256, "thumbnail": 64}
"""Square profile-picture variants, largest first (each is made from the one before)."""
PREVIEW_SIZE = 256
VARIANT_FORMAT = "WEBP"
VARIANT_EXTENSION = "webp"
VARIANT_QUALITY = 82


class ImageRefused(ValueError):
    """Not an image we accept: undecodable, truncated, too many pixels."""


@dataclass(frozen=True)
class Rendered:
    """Encoded outputs by variant name, and the source's size (after EXIF orientation)."""

    outputs: dict[str, tuple[bytes, str]]
    """variant → (bytes, file extension)"""
    width: int
    height: int
    source_format: str


def configure(max_pixels: int) -> None:
    """Pillow's own bomb check at the configured budget (it is process-wide state in Pillow)."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def open_image(data: bytes, kind: str, max_pixels: int) -> Image.Image:
    """Open (not decode) ``data`` with the one decoder its sniffed ``kind`` calls for."""
    try:
        image = Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[kind]])
    except Image.DecompressionBombError as exc:
        raise ImageRefused(f"decompression bomb: {exc}") from exc
    except Image.DecompressionBombWarning as exc:
        raise ImageRefused(f"decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(f"not a valid {kind} image: {exc}") from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        image.close()
        raise ImageRefused(f"decompression bomb: {width}x{height} is more than {max_pixels} pixels")
    return image


def _decoded(image: Image.Image, smallest_side: int | None) -> Image.Image:
    """Decode, at reduced scale for JPEG when only ``smallest_side`` pixels are needed."""
    try:
        if smallest_side is not None and image.format == "JPEG":
            mode = image.mode if image.mode in ("RGB", "L", "CMYK") else "RGB"
            image.draft(mode, (smallest_side, smallest_side))
        image.load()
        upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(f"decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused(f"image does not decode: {exc}") from exc
    return upright


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with transparency composed over white."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    image.info.clear()  # nothing of the source (EXIF, XMP, ICC, comments) travels along
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _variant(image: Image.Image) -> bytes:
    return _encode(image, VARIANT_FORMAT, quality=VARIANT_QUALITY, method=4)


def profile_variants(data: bytes, kind: str, max_pixels: int) -> Rendered:
    """Square center crops at :data:`PROFILE_SIZES`, as WebP, without metadata."""
    with open_image(data, kind, max_pixels) as source:
        fmt = source.format or kind
        largest = max(PROFILE_SIZES.values())
        upright = _flatten(_decoded(source, largest))
        width, height = upright.size
        outputs: dict[str, tuple[bytes, str]] = {}
        current = upright
        for name, side in PROFILE_SIZES.items():
            if current is upright:
                current = ImageOps.fit(current, (side, side), Image.Resampling.LANCZOS)
            else:
                current = current.resize((side, side), Image.Resampling.LANCZOS)
            outputs[name] = (_variant(current), VARIANT_EXTENSION)
    return Rendered(outputs, width, height, fmt)


def attachment_outputs(data: bytes, kind: str, max_pixels: int) -> Rendered:
    """The image again without metadata (same format; GIF as PNG, first frame) and a preview."""
    with open_image(data, kind, max_pixels) as source:
        fmt = source.format or kind
        upright = _decoded(source, None)
        width, height = upright.size
        if kind == JPEG:
            original = (_encode(_flatten(upright), "JPEG", quality=95, optimize=True), "jpg")
        elif kind == WEBP:
            keep = upright if upright.mode in ("RGB", "RGBA") else upright.convert("RGBA")
            original = (_encode(keep, "WEBP", quality=95, method=4), "webp")
        else:
            keep = upright
            if keep.mode == "P" and "transparency" in keep.info:
                keep = keep.convert("RGBA")  # before the info (and its transparency) is dropped
            elif keep.mode not in ("1", "L", "LA", "RGB", "RGBA", "P"):
                keep = keep.convert("RGBA")
            original = (_encode(keep.copy(), "PNG", optimize=True), "png")
        preview = _flatten(upright)
        preview.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.LANCZOS)
        outputs = {"original": original, "preview": (_variant(preview), VARIANT_EXTENSION)}
    return Rendered(outputs, width, height, fmt)


def naive_profile_variants(data: bytes) -> dict[str, bytes]:
    """The straightforward way (full decode, three LANCZOS resizes), for the benchmark only."""
    out: dict[str, bytes] = {}
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        for name, side in PROFILE_SIZES.items():
            resized = image.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            resized.save(buf, format="JPEG", quality=85)
            out[name] = buf.getvalue()
    return out
