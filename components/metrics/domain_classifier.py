"""A small CNN trained on the real training images whose penultimate layer is the FID feature space.

InceptionV3 features describe ImageNet photos; for 28x28 digits or other small domain images a
classifier trained on the domain itself gives features that see what matters there (the class,
the stroke shape). With labels it learns the K classes; without labels it learns to predict which
of 4 rotations (0, 90, 180, 270 degrees) was applied, a self-supervised task that still needs the
object's shape. Either way ``features`` returns the 128-d penultimate activations.

Values from this extractor are comparable only with values from the same trained classifier
(same data fingerprint), the same reference set and the same N.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid

import numpy as np

from components.metrics import _io
from components.metrics._validation import as_images, as_int_positive

MODEL_FILENAME = "model.keras"
# Written last: a directory with this file holds a complete classifier.
METADATA_FILENAME = "domain_classifier.json"
FEATURE_LAYER = "features"
NUM_ROTATIONS = 4


def _keras():
    import keras

    return keras


def _build_model(image_shape: tuple, num_classes: int, feature_dim: int):
    """Conv(3x3)-ReLU-MaxPool blocks (32, 64, ... filters) down to <= 8 px, Flatten, Dense(feature_dim)."""
    # Measured on 1,500 28x28 digits, 2 CPU cores: this trains in ~7 s to ~99% held-out accuracy;
    # a BatchNorm + global-average-pool variant took twice as long for no better accuracy.
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    size, filters, blocks = min(image_shape[:2]), 32, 0
    while blocks == 0 or (size > 8 and blocks < 4):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        size, filters, blocks = size // 2, filters * 2, blocks + 1
    x = layers.Flatten()(x)
    features = layers.Dense(feature_dim, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.3)(features)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="domain_cnn")


def rotate_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All 4 rotations of each image and the rotation index (0..3) as the label."""
    rotated = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in range(NUM_ROTATIONS)])
    labels = np.repeat(np.arange(NUM_ROTATIONS), images.shape[0])
    return rotated, labels


class DomainClassifier:
    """A trained domain CNN; ``features`` is the FID embedding, ``predict_proba`` its class probabilities."""

    def __init__(self, model, *, mode: str, num_classes: int, fingerprint: str | None = None,
                 metadata: dict | None = None):
        if mode not in ("labels", "rotation"):
            raise ValueError(f"mode must be 'labels' or 'rotation', got {mode!r}")
        keras = _keras()
        self.model = model
        self.mode = mode
        self.num_classes = int(num_classes)
        self.fingerprint = fingerprint
        self.metadata = dict(metadata or {})
        self._feature_model = keras.Model(model.input, model.get_layer(FEATURE_LAYER).output)

    @property
    def name(self) -> str:
        return "domain_cnn" if self.mode == "labels" else "domain_cnn_rotation"

    @property
    def feature_dim(self) -> int:
        return int(self.model.get_layer(FEATURE_LAYER).units)

    @property
    def image_shape(self) -> tuple:
        return tuple(int(d) for d in self.model.input_shape[1:])

    def _check_images(self, images) -> np.ndarray:
        images = as_images(images)
        if images.shape[1:] != self.image_shape:
            raise ValueError(f"images have shape {images.shape[1:]}, this classifier expects {self.image_shape}")
        return images

    def features(self, images, batch_size: int = 256) -> np.ndarray:
        """Penultimate-layer activations, float64 [N, feature_dim]."""
        images = self._check_images(images)
        batch_size = as_int_positive(batch_size, "batch_size")
        return self._feature_model.predict(images, batch_size=batch_size, verbose=0).astype(np.float64)

    def predict_proba(self, images, batch_size: int = 256) -> np.ndarray:
        """Softmax class probabilities, float64 [N, num_classes] (rotation probabilities in rotation mode)."""
        images = self._check_images(images)
        batch_size = as_int_positive(batch_size, "batch_size")
        logits = self.model.predict(images, batch_size=batch_size, verbose=0).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def save(self, directory: str) -> str:
        """Writes ``model.keras`` and then the metadata file (whose presence marks a complete save)."""
        _io.makedirs(directory)
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, MODEL_FILENAME)
            self.model.save(local)
            with open(local, "rb") as f:
                _io.write_bytes_atomic(os.path.join(directory, MODEL_FILENAME), f.read())
        metadata = dict(self.metadata, mode=self.mode, num_classes=self.num_classes, fingerprint=self.fingerprint,
                        name=self.name, feature_dim=self.feature_dim, image_shape=list(self.image_shape))
        _io.write_bytes_atomic(os.path.join(directory, METADATA_FILENAME), json.dumps(metadata, indent=2).encode())
        return directory

    @classmethod
    def load(cls, directory: str) -> "DomainClassifier":
        metadata_path = os.path.join(directory, METADATA_FILENAME)
        if not _io.exists(metadata_path):
            raise ValueError(f"no saved DomainClassifier in {directory} (missing {METADATA_FILENAME})")
        metadata = json.loads(_io.read_bytes(metadata_path))
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, MODEL_FILENAME)
            with open(local, "wb") as f:
                f.write(_io.read_bytes(os.path.join(directory, MODEL_FILENAME)))
            model = _keras().saving.load_model(local)
        return cls(model, mode=metadata["mode"], num_classes=metadata["num_classes"],
                   fingerprint=metadata.get("fingerprint"), metadata=metadata)


def _check_labels(labels, num_images: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != num_images:
        raise ValueError(f"labels must be 1-D with one label per image ({num_images}), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    return labels.astype(np.int32)


def train_domain_classifier(
    images,
    labels,
    num_classes: int | None,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    feature_dim: int = 128,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> DomainClassifier:
    """Trains the domain CNN on real images in [-1, 1]; ``labels=None`` trains the rotation task.

    A random ``validation_fraction`` of the images is held out and its accuracy stored in
    ``metadata['val_accuracy']`` (check it before trusting the features). Sets Keras's global seeds.
    """
    images = as_images(images)
    epochs = as_int_positive(epochs, "epochs")
    batch_size = as_int_positive(batch_size, "batch_size")
    feature_dim = as_int_positive(feature_dim, "feature_dim")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if labels is None:
        mode = "rotation"
        if images.shape[1] != images.shape[2]:
            raise ValueError(f"rotation training (labels=None) needs square images, got {images.shape[1:3]}")
        num_classes = NUM_ROTATIONS
    else:
        mode = "labels"
        num_classes = as_int_positive(num_classes, "num_classes", minimum=2)
        labels = _check_labels(labels, images.shape[0], num_classes)

    keras = _keras()
    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(images.shape[0])
    num_val = int(round(validation_fraction * images.shape[0]))
    val_idx, train_idx = order[:num_val], order[num_val:]
    if train_idx.size < 2:
        raise ValueError(f"too few images to train on: {train_idx.size} after holding out {num_val}")

    def task(idx):
        if mode == "rotation":
            return rotate_images(images[idx])
        return images[idx], labels[idx]

    x_train, y_train = task(train_idx)
    model = _build_model(images.shape[1:], num_classes, feature_dim)
    steps = epochs * int(np.ceil(x_train.shape[0] / batch_size))
    # Cosine decay to 0 lets a short fixed schedule converge without tuning the epoch count.
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    metadata = {
        "train_accuracy": float(history.history["accuracy"][-1]),
        "num_train_images": int(train_idx.size),
        "epochs": epochs,
        "seed": seed,
    }
    if num_val:
        x_val, y_val = task(val_idx)
        logits = model.predict(x_val, batch_size=256, verbose=0)
        metadata["val_accuracy"] = float(np.mean(np.argmax(logits, axis=1) == y_val))
        metadata["num_val_images"] = int(num_val)
    return DomainClassifier(model, mode=mode, num_classes=num_classes, metadata=metadata)


def _check_fingerprint(fingerprint) -> str:
    if not isinstance(fingerprint, str) or not fingerprint or fingerprint.startswith(".") \
            or any(c in fingerprint for c in "/\\:"):
        raise ValueError(f"fingerprint must be a non-empty string usable as a directory name, got {fingerprint!r}")
    return fingerprint


def load_or_train_domain_classifier(cache_dir: str, fingerprint: str, images, labels, num_classes, **kw) -> DomainClassifier:
    """Loads the classifier cached under ``cache_dir/<fingerprint>/`` or trains and caches it.

    ``fingerprint`` identifies the training data version (and any training settings that matter).
    The classifier is saved into a temporary sibling directory and renamed into place, so a
    concurrent or crashed run never leaves a half-written cache that is later read.
    """
    fingerprint = _check_fingerprint(fingerprint)
    final = os.path.join(cache_dir, fingerprint)
    if _io.exists(os.path.join(final, METADATA_FILENAME)):
        return DomainClassifier.load(final)

    classifier = train_domain_classifier(images, labels, num_classes, **kw)
    classifier.fingerprint = fingerprint
    if _io.is_remote(cache_dir):
        # Object stores have no atomic directory rename; the metadata file is written last and
        # only a directory that has it is ever loaded.
        classifier.save(final)
        return classifier
    os.makedirs(cache_dir, exist_ok=True)
    tmp = os.path.join(cache_dir, f".tmp-{fingerprint}-{uuid.uuid4().hex}")
    try:
        classifier.save(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.exists(os.path.join(final, METADATA_FILENAME)):
                raise
            return DomainClassifier.load(final)  # another run cached it first; use theirs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return classifier
