"""What turns an ordinary photo into a training image: orientation, mode, size.

``data.image_size`` (an int for square images, or ``[H, W]``) with ``data.resize``:
  center_crop  scale so the image covers H x W, then cut the middle (StyleGAN2-ADA's dataset_tool
               ``--transform center-crop``; Keras' ``crop_to_aspect_ratio=True``): the default;
  pad          scale so the image fits inside H x W, then pad the rest with ``data.background``;
  stretch      scale each side to H x W (changes the aspect ratio; Keras' default).
Downscaling uses Lanczos filtering, as dataset_tool does. ``data.channels`` (1 or 3) converts
every image to grayscale (ITU-R 601 luma, PIL's ``L``) or RGB; unset, it is 3 when any image is
in colour, else 1. Transparent pixels (RGBA, LA, palette transparency) are composited on
``data.background`` (RGB, white by default), never dropped. The EXIF orientation tag is applied
first, so a photo taken upright trains upright. 16-bit images are converted (value >> 8) only when
``data.convert_16bit`` is true; otherwise they are refused by name, as without a transform.

Without ``data.image_size`` no image is resized: every one must already have the same size, and
``channels``/``convert_16bit`` still convert modes when given.
"""
from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
from PIL import Image, ImageOps
from tfx_gan.common.errors import UserError

RESIZE_MODES = ("center_crop", "pad", "stretch")
# PIL modes a transform accepts: 8-bit ones and, with convert_16bit, 16/32-bit integer grayscale.
EIGHT_BIT_MODES = ("1", "L", "P", "RGB", "RGBA", "LA")
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


class TransformError(UserError, ValueError):
    """An image a transform cannot convert (the message says why)."""


@dataclasses.dataclass(frozen=True)
class ImageTransform:
    size: tuple[int, int] | None = None          # (height, width); None: keep (sizes must match)
    resize: str = "center_crop"
    channels: int | None = None                  # 1, 3, or None: decided from the images at ingestion
    background: tuple[int, int, int] = (255, 255, 255)
    convert_16bit: bool = False

    def with_channels(self, channels: int) -> "ImageTransform":
        return dataclasses.replace(self, channels=channels)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ImageTransform":
        values = json.loads(text)
        values["size"] = None if values["size"] is None else tuple(values["size"])
        values["background"] = tuple(values["background"])
        return cls(**values)

    def describe(self) -> str:
        size = "as found" if self.size is None else f"{self.size[0]}x{self.size[1]} ({self.resize})"
        channels = {None: "as found", 1: "grayscale", 3: "RGB"}[self.channels]
        return f"size {size}, {channels}, alpha on {self.background}"


def parse_image_size(value) -> tuple[int, int] | None:
    """``64`` -> (64, 64); ``[48, 64]`` -> (48, 64) (height, width); None -> None; else ValueError."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        height, width = value
    elif isinstance(value, (list, tuple)) or isinstance(value, bool):
        raise ValueError(f"expected an int or [height, width], got {value!r}")
    else:
        height = width = value
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in (height, width)):
        raise ValueError(f"expected sizes from 1 to 4096 pixels, got {value!r}")
    return int(height), int(width)


def parse_background(value) -> tuple[int, int, int]:
    """``white``/``black``/``[r, g, b]`` (0..255) -> (r, g, b); else ValueError."""
    named = {"white": (255, 255, 255), "black": (0, 0, 0)}
    if isinstance(value, str) and value in named:
        return named[value]
    if (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)):
        return tuple(int(v) for v in value)
    raise ValueError(f"expected white, black or [r, g, b] with values 0..255, got {value!r}")


def is_colour(image: Image.Image) -> bool:
    """Whether a (header-opened) image holds colour: RGB-like modes and palettes."""
    return image.mode not in ("1", "L", "LA") + SIXTEEN_BIT_MODES


def check_mode(image: Image.Image, transform: ImageTransform) -> None:
    """Refuses what the transform cannot convert: unknown modes, 16-bit without convert_16bit."""
    if image.mode in SIXTEEN_BIT_MODES:
        if not transform.convert_16bit:
            raise TransformError(f"16-bit image (PIL mode {image.mode}): set data.convert_16bit: true to "
                                 "convert it to 8 bits (value >> 8), or convert it first")
    elif image.mode not in EIGHT_BIT_MODES:
        raise TransformError(f"PIL mode {image.mode} cannot be converted (supported: "
                             f"{', '.join(EIGHT_BIT_MODES + SIXTEEN_BIT_MODES)})")


def _to_mode(image: Image.Image, channels: int, background: tuple[int, int, int]) -> Image.Image:
    if image.mode in SIXTEEN_BIT_MODES:  # convert_16bit was checked by check_mode
        pixels = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((np.clip(pixels, 0, 65535) >> 8).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA"):
        canvas = Image.new("RGB", image.size, background)
        canvas.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        image = canvas
    return image.convert("L" if channels == 1 else "RGB")


def _to_size(image: Image.Image, size: tuple[int, int], resize: str, background) -> Image.Image:
    height, width = size
    if image.size == (width, height):
        return image
    method = Image.Resampling.LANCZOS
    if resize == "stretch":
        return image.resize((width, height), method)
    if resize == "pad":
        fill = background if image.mode == "RGB" else int(round(np.dot(background, (0.299, 0.587, 0.114))))
        return ImageOps.pad(image, (width, height), method, color=fill, centering=(0.5, 0.5))
    return ImageOps.fit(image, (width, height), method, centering=(0.5, 0.5))


def apply(image: Image.Image, transform: ImageTransform) -> np.ndarray:
    """uint8 [H, W, channels] of ``image`` (opened by PIL) after the transform; ``transform.channels``
    must be decided (ingestion decides it from the images when the config leaves it unset)."""
    check_mode(image, transform)
    image = ImageOps.exif_transpose(image)
    image = _to_mode(image, transform.channels, transform.background)
    if transform.size is not None:
        image = _to_size(image, transform.size, transform.resize, transform.background)
    pixels = np.asarray(image, np.uint8)
    return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels


def transformed_png(encoded: bytes, transform: ImageTransform) -> tuple[bytes, tuple[int, int, int]]:
    """PNG bytes and (H, W, C) of an encoded image after the transform."""
    with Image.open(io.BytesIO(encoded)) as image:
        pixels = apply(image, transform)
    out = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue(), tuple(pixels.shape)
