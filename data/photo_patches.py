"""A small colour dataset: 32x32 RGB patches of scikit-learn's two sample photographs.

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
