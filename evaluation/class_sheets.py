"""A picture per class for people to judge: samples, each sample's nearest training image, and real
held-out images of the class, one block of three rows per class (``classes.png`` of an evaluation).

"Nearest" is in pixels (Euclidean distance between the images as drawn): a near-copy of a training
image is what a person would call one. Each sample is captioned with its distance to that nearest
image divided by the median distance of real held-out images of the class to theirs: about 1 for a
sample as new as unseen real images, near 0 for a copy. ``nearest_training_ratios`` gives those
ratios for every sample, for metrics.json.
"""
from __future__ import annotations

import numpy as np

from tfx_gan.training.samples import pyplot, save_figure
from tfx_gan.metrics._neighbours import nearest_centre

PER_CLASS = 8


def _flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float64).reshape(len(images), -1)


def nearest_training_ratios(samples: np.ndarray, train_images: np.ndarray, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each sample's nearest training image, its distance to it / the median distance of
    ``held_out`` real images to their nearest training image)."""
    train = _flat(train_images)
    index, dist_sq = nearest_centre(_flat(samples), train)
    _, real_sq = nearest_centre(_flat(held_out), train)
    scale = float(np.sqrt(np.median(real_sq))) or 1.0
    return index, np.sqrt(dist_sq) / scale


def _show(ax, image) -> None:
    pixels = np.clip((np.asarray(image, np.float32) + 1.0) * 127.5, 0, 255).astype(np.uint8)
    ax.imshow(pixels[..., 0] if pixels.shape[-1] == 1 else pixels, cmap="gray" if pixels.shape[-1] == 1 else None,
              vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def save_class_sheets(samples: np.ndarray, sample_labels: np.ndarray | None, train_images: np.ndarray,
                      train_labels: np.ndarray | None, held_out: np.ndarray, held_out_labels: np.ndarray | None,
                      class_names: list[str] | None, path: str, per_class: int = PER_CLASS) -> dict:
    """Writes the picture (images in [-1, 1]); returns {"min": , "median": } of the ratios shown.
    Without labels (an unconditional generator) there is one block for all images."""
    classes = list(range(len(class_names))) if class_names and sample_labels is not None else [None]
    plt = pyplot()
    fig, axes = plt.subplots(3 * len(classes), per_class, squeeze=False,
                             figsize=(per_class * 1.1, 3 * len(classes) * 1.22 + 0.2), dpi=100)
    ratios = []
    for block, klass in enumerate(classes):
        def of(images, labels):
            chosen = images if klass is None or labels is None else images[np.asarray(labels) == klass]
            return chosen[:per_class]

        shown = of(samples, sample_labels)
        real = of(held_out, held_out_labels)
        train = train_images if klass is None or train_labels is None else train_images[np.asarray(train_labels) == klass]
        if len(train) == 0 or len(real) == 0:
            train, real = train_images, held_out[:per_class]
        index, ratio = nearest_training_ratios(shown, train, real) if len(shown) else ([], [])
        ratios.extend(ratio)
        name = "all classes" if klass is None else class_names[klass]
        for column in range(per_class):
            top, middle, bottom = axes[3 * block, column], axes[3 * block + 1, column], axes[3 * block + 2, column]
            for ax in (top, middle, bottom):
                ax.axis("off")
            if column < len(shown):
                _show(top, shown[column])
                _show(middle, train[index[column]])
                middle.set_title(f"{ratio[column]:.2f}", fontsize=7, pad=1)
                top.axis("on"), middle.axis("on")
            if column < len(real):
                _show(bottom, real[column])
                bottom.axis("on")
        axes[3 * block, 0].set_ylabel("samples", fontsize=7)
        axes[3 * block + 1, 0].set_ylabel("nearest\ntraining", fontsize=7)
        axes[3 * block + 2, 0].set_ylabel("real\nheld-out", fontsize=7)
        axes[3 * block, 0].set_title(name, fontsize=9, loc="left", pad=2)
    fig.suptitle("per class: samples, each one's nearest training image (pixel distance / real images' median), "
                 "real held-out images", fontsize=7)
    fig.tight_layout(h_pad=0.15, w_pad=0.1)
    save_figure(fig, path)
    ratios = np.asarray(ratios, np.float64)
    return {"min": float(ratios.min()), "median": float(np.median(ratios))} if ratios.size else {}
