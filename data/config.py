"""The ``data:`` section of the pipeline config: where the images are and how they become training
images (data/image_transform.py). Read by the pipeline's config and by ``./gan make-schema``, so a
schema describes exactly what training sees."""
from __future__ import annotations

import dataclasses
from typing import Any

from tfx_gan.common.options import ConfigError, option
from tfx_gan.data.image_transform import ImageTransform, parse_background, parse_image_size
from tfx_gan.data.ingest import parse_span_policy


@dataclasses.dataclass(frozen=True)
class DataConfig:
    input_base: str = option(help="holds span-1/, span-2/, ...")
    schema_file: str = option(help="curated TFDV schema: image size, channels, label domain")
    train_buckets: int = option(4, minimum=1, help="train:eval split by hash buckets")
    eval_buckets: int = option(1, minimum=1, help="hash buckets of the eval split")
    spans: str = option("latest", help="what a run trains on: latest (the newest span), last:K or all")
    # 0.3: two draws of the same balanced digits differ by < 0.05; one class only is ~0.9.
    label_drift: float | None = option(0.3, minimum=0, exclusive=True, help="largest Jensen-Shannon divergence of "
                                       "the label distribution from the previous span; null: no check")
    beam_args: tuple[str, ...] | None = option(None, help="Beam pipeline args for every Beam-based component "
                                               "(local runs; null: one in-process worker)")
    # How images become training images (data/image_transform.py); unset: every image must already
    # have the same size, and is used as found.
    image_size: Any = option(None, help="an int (square) or [height, width]; null: sizes must match")
    resize: str = option("center_crop", choices=("center_crop", "pad", "stretch"), help="fitting another aspect ratio")
    channels: int | None = option(None, choices=(1, 3), help="1 grayscale, 3 RGB; null: 3 if any image is colour")
    background: Any = option("white", help="white, black or [r, g, b]: under transparent pixels and padding")
    convert_16bit: bool = option(False, help="convert 16-bit images to 8 bits (value >> 8) instead of refusing them")

    def check(self, prefix: str) -> None:
        for name in ("input_base", "schema_file"):
            if not getattr(self, name):
                raise ConfigError(f"{prefix}.{name} is required")
        try:
            parse_span_policy(self.spans)
        except ValueError as e:
            raise ConfigError(f"{prefix}.spans: {e}") from None
        image_transform_from(self, prefix)

    def image_transform(self):
        """The data/image_transform.py ImageTransform these options ask for, or None (none asked)."""
        return image_transform_from(self, "data")


def image_transform_from(options, prefix: str = "data"):
    """An ImageTransform from an object with DataConfig's transform fields; None when they ask for
    nothing (no size, channels or 16-bit conversion); a ConfigError naming a bad value."""
    values = {}
    for name, parse in (("image_size", parse_image_size), ("background", parse_background)):
        try:
            values[name] = parse(getattr(options, name))
        except ValueError as e:
            raise ConfigError(f"{prefix}.{name}: {e}") from None
    if values["image_size"] is None and options.channels is None and not options.convert_16bit:
        return None
    return ImageTransform(size=values["image_size"], resize=options.resize, channels=options.channels,
                          background=values["background"], convert_16bit=options.convert_16bit)
