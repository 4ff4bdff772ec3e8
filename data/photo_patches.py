"""Two small colour datasets from scikit-learn's two sample photographs: 32x32 RGB patches, and
crops of varied size, aspect ratio and mode (``photo_crops``, at the end).

`sklearn.datasets.load_sample_images` ships china.jpg and flower.jpg (427x640 RGB) inside the
wheel. Each photograph is one class (folders ``china``, ``flower``: labels 0 and 1). The span
holds the patches on a 16-px grid (neighbours overlap by half): 975 per photograph, 1,950 in
all. ``unseen_patches`` cuts the same photographs on the grid shifted by 8 px, so none of its
patches is in the span: real images that no component has seen, for checking the evaluation.
"""
from __future__ import annotations

import numpy as np

PATCH = 32
STRIDE = 16
CLASS_NAMES = ("china", "flower")  # sorted: the label of each is its index


def _photographs() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    by_name = {path.rsplit("/", 1)[-1].split(".")[0]: image for path, image in zip(bunch.filenames, bunch.images)}
    return [np.asarray(by_name[name], np.uint8) for name in CLASS_NAMES]


def _patches(photo: np.ndarray, offset: int) -> np.ndarray:
    height, width = photo.shape[:2]
    return np.stack([photo[y:y + PATCH, x:x + PATCH]
                     for y in range(offset, height - PATCH + 1, STRIDE)
                     for x in range(offset, width - PATCH + 1, STRIDE)])


def photo_patches(offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, 32, 32, 3], int64 labels [N]) of both photographs on the grid shifted by ``offset``."""
    images, labels = [], []
    for label, photo in enumerate(_photographs()):
        patches = _patches(photo, offset)
        images.append(patches)
        labels.append(np.full(len(patches), label, np.int64))
    return np.concatenate(images), np.concatenate(labels)


def unseen_patches() -> tuple[np.ndarray, np.ndarray]:
    """Patches on the grid shifted by half a stride: none of them is an image of the span."""
    return photo_patches(offset=STRIDE // 2)


def photo_patches_span() -> tuple[np.ndarray, list[str]]:
    """The images and their class folders for data/bundled.py."""
    images, labels = photo_patches()
    return images, [CLASS_NAMES[label] for label in labels]


# ---------------------------------------------------------------------------- photo crops
# What a user's own photo folder looks like: crops of both photographs at varied sizes and aspect
# ratios, as JPEG and PNG, some grayscale, some RGBA (a transparent border), some JPEGs stored
# sideways with an EXIF orientation tag that turns them upright. Ingested with data.image_size.
CROPS_PER_CLASS = 60  # ~24 held out of 120: the evaluation needs >= 10 per half
EXIF_ORIENTATION = 0x0112


def _encoded(image, fmt: str, exif=None) -> bytes:
    import io

    out = io.BytesIO()
    kwargs = {"quality": 92} if fmt == "JPEG" else {}
    if exif is not None:
        kwargs["exif"] = exif
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def photo_crops(per_class: int = CROPS_PER_CLASS, seed: int = 0) -> list[tuple[str, str, bytes]]:
    """(class folder, file name, file bytes) of ``per_class`` crops of each photograph: sides of
    48-240 px, aspect ratios 1:2 to 2:1; in turn an RGB JPEG, a grayscale PNG, an RGBA PNG with a
    transparent border and a JPEG stored rotated by 90 degrees with EXIF orientation 6 (shown
    upright by viewers and by ingestion)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    files = []
    for class_name, photo in zip(CLASS_NAMES, _photographs()):
        height, width = photo.shape[:2]
        for i in range(per_class):
            side = int(rng.integers(48, 241))
            aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))  # width / height
            h = min(height, max(16, int(round(side / np.sqrt(aspect)))))
            w = min(width, max(16, int(round(side * np.sqrt(aspect)))))
            y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            crop = Image.fromarray(photo[y:y + h, x:x + w])
            kind = i % 4
            if kind == 0:
                files.append((class_name, f"{i:03d}.jpg", _encoded(crop, "JPEG")))
            elif kind == 1:
                files.append((class_name, f"{i:03d}.png", _encoded(crop.convert("L"), "PNG")))
            elif kind == 2:
                alpha = Image.new("L", crop.size, 0)
                alpha.paste(255, (w // 8, h // 8, w - w // 8, h - h // 8))
                rgba = crop.convert("RGBA")
                rgba.putalpha(alpha)
                files.append((class_name, f"{i:03d}.png", _encoded(rgba, "PNG")))
            else:
                # Orientation 6: the stored pixels are the upright image turned 90 degrees
                # counter-clockwise; a viewer turns them clockwise.
                exif = Image.Exif()
                exif[EXIF_ORIENTATION] = 6
                stored = crop.transpose(Image.Transpose.ROTATE_90)
                files.append((class_name, f"{i:03d}.jpg", _encoded(stored, "JPEG", exif.tobytes())))
    return files
