"""A small CNN trained on the real training images whose penultimate layer is the FID feature space.

InceptionV3 features describe ImageNet photos; for 28x28 digits or other small domain images a
network trained on the domain itself gives features that see what matters there. It learns two
tasks with one trunk: the data's K classes (when labelled) and which of 4 rotations (0, 90, 180,
270 degrees) was applied to an image, a self-supervised task that needs the object's shape and
the scene's layout. The class task alone sees class and colour more than structure (with two
classes, colour blobs of the right hues score well); the rotation task makes the features see
edges and shapes as well. Without labels only the rotation task is learnt. ``features`` returns
the 128-d penultimate activations.

Values from this extractor are comparable only with values from the same trained network
(same data fingerprint), the same reference set and the same N.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid

import numpy as np

from tfx_gan.metrics import _io
from tfx_gan.metrics._validation import as_images, as_int_positive

MODEL_FILENAME = "model.keras"
# Written last: a directory with this file holds a complete classifier.
METADATA_FILENAME = "domain_classifier.json"
FEATURE_LAYER = "features"
NUM_ROTATIONS = 4
PROGRESS_LINES = 10  # at most this many epoch lines per training, the last epoch always

logger = logging.getLogger(__name__)


def _keras():
    import keras

    return keras


def _build_model(image_shape: tuple, num_classes: int | None, feature_dim: int, rotation_task: bool = True,
                 width: int = 32, augment: bool = False):
    """Conv(3x3)-ReLU-MaxPool blocks (``width``, 2x ``width``, ... filters) down to <= 8 px, Flatten,
    Dense(feature_dim), then a class head (``logits``, when ``num_classes``) and a rotation head
    (``rotation_logits``, when ``rotation_task``). ``augment``: a random shift of up to 1/8 of the
    image in training (edges repeated), a no-op when computing features."""
    # Measured on 1,500 28x28 digits, 2 CPU cores: this trains in ~7 s to ~99% held-out accuracy;
    # a BatchNorm + global-average-pool variant took twice as long for no better accuracy.
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=image_shape, name="images")
    x = layers.RandomTranslation(0.125, 0.125, fill_mode="nearest", name="shift")(inputs) if augment else inputs
    size, filters, blocks = min(image_shape[:2]), int(width), 0
    while blocks == 0 or (size > 8 and blocks < 4):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        size, filters, blocks = size // 2, filters * 2, blocks + 1
    x = layers.Flatten()(x)
    features = layers.Dense(feature_dim, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.3)(features)
    outputs = {"rotation_logits": layers.Dense(NUM_ROTATIONS, name="rotation_logits")(x)} if rotation_task else {}
    if num_classes:
        outputs["logits"] = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="domain_cnn")


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
        # predict_proba's head: the data's classes, or the rotations when there are no labels
        head = "logits" if mode == "labels" else "rotation_logits"
        self._head_model = keras.Model(model.input, model.get_layer(head).output)

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
        logits = self._head_model.predict(images, batch_size=batch_size, verbose=0).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def save(self, directory: str) -> str:
        """Writes ``model.keras`` and then the metadata file (whose presence marks a complete save)."""
        _io.makedirs(directory)
        _io.write_through_local_file(os.path.join(directory, MODEL_FILENAME), self.model.save)
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
        model = _io.read_through_local_file(os.path.join(directory, MODEL_FILENAME), _keras().saving.load_model)
        return cls(model, mode=metadata["mode"], num_classes=metadata["num_classes"],
                   fingerprint=metadata.get("fingerprint"), metadata=metadata)


def _progress_callback(epochs: int, num_images: int, single_task: str = "rotation"):
    """A Keras callback that logs 'epoch k/K' lines with the loss, accuracies and time: training
    runs for minutes inside ReferenceStatsGen on larger data, silent otherwise."""
    keras = _keras()
    every = max(1, epochs // PROGRESS_LINES)

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()
            logger.info("domain classifier: training on %d images for %d epochs", num_images, epochs)

        def on_epoch_end(self, epoch, logs=None):
            done = epoch + 1
            if done % every and done != epochs:
                return
            logs = logs or {}
            # Keras names them by output; a one-head model's one metric is plain "accuracy".
            accuracies = "".join(f", {label} accuracy {logs[key]:.3f}"
                                 for key, label in (("logits_accuracy", "class"), ("rotation_logits_accuracy", "rotation"),
                                                    ("accuracy", single_task))
                                 if key in logs)
            elapsed = time.perf_counter() - self.started
            left = f", ~{elapsed / done * (epochs - done):.0f} s left" if done < epochs else ""
            logger.info("domain classifier: epoch %d/%d, loss %.4f%s, %.0f s elapsed%s", done, epochs,
                        logs.get("loss", float("nan")), accuracies, elapsed, left)

    return Progress()


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
    rotation_task: bool = True,
    progress: bool = True,
    width: int = 32,
    augment: bool = False,
    patience: int | None = None,
) -> DomainClassifier:
    """Trains the domain CNN on real images in [-1, 1]: class + rotation, or rotation alone when
    ``labels=None``, or (``rotation_task=False``) the class task alone: a plain classifier, as the
    Classification Accuracy Score trains it (metrics/classification_accuracy.py).

    Each image is seen upright (class target; rotation target 0) and once more turned by a random
    quarter turn (rotation target only: a turned 6 is not a 6). ``progress``: log epoch lines. A random ``validation_fraction``
    of the images is held out and its class (or rotation) accuracy stored in
    ``metadata['val_accuracy']`` (check it before trusting the features). ``width``: filters of the
    first block; ``augment``: random shifts in training; ``patience``: stop when the held-out
    accuracy has not improved for this many epochs and keep the best epoch's weights (needs a
    ``validation_fraction``; the stored val_accuracy is then that of the chosen epoch). Sets Keras's
    global seeds.
    """
    images = as_images(images)
    epochs = as_int_positive(epochs, "epochs")
    batch_size = as_int_positive(batch_size, "batch_size")
    feature_dim = as_int_positive(feature_dim, "feature_dim")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"the rotation task needs square images, got {images.shape[1:3]}")
    if labels is None and not rotation_task:
        raise ValueError("rotation_task=False needs labels: without them there is nothing to learn")
    if labels is None:
        mode, num_classes = "rotation", None
    else:
        mode = "labels"
        num_classes = as_int_positive(num_classes, "num_classes", minimum=2)
        labels = _check_labels(labels, images.shape[0], num_classes)

    _keras().utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(images.shape[0])
    num_val = int(round(validation_fraction * images.shape[0]))
    val_idx, train_idx = order[:num_val], order[num_val:]
    if train_idx.size < 2:
        raise ValueError(f"too few images to train on: {train_idx.size} after holding out {num_val}")

    x_train, targets, weights = _training_set(images[train_idx], None if labels is None else labels[train_idx], rng,
                                              rotation_task)
    if patience is not None and not num_val:
        raise ValueError("patience needs a validation_fraction > 0: early stopping watches the held-out accuracy")
    model = _build_model(images.shape[1:], num_classes, feature_dim, rotation_task, width, augment)
    validation = None
    if patience is not None:
        x_val, val_targets, val_weights = _training_set(images[val_idx], None if labels is None else labels[val_idx],
                                                        rng, rotation_task)
        validation = (x_val, val_targets, val_weights)
    _fit(model, x_train, targets, weights, epochs, batch_size, learning_rate, int(train_idx.size), progress,
         validation, patience)
    classifier = DomainClassifier(model, mode=mode, num_classes=num_classes or NUM_ROTATIONS)
    classifier.metadata = {"num_train_images": int(train_idx.size), "epochs": epochs, "seed": seed,
                           "rotation_task": rotation_task, "width": int(width), "augment": bool(augment),
                           "patience": patience, "epochs_trained": len(model.history.epoch) if model.history else epochs}
    if num_val:
        accuracy = _held_out_accuracy(classifier, images[val_idx], None if labels is None else labels[val_idx], rng)
        classifier.metadata.update(val_accuracy=accuracy, num_val_images=int(num_val))
        logger.info("domain classifier: held-out %s accuracy %.3f on %d images", "class" if mode == "labels"
                    else "rotation", accuracy, num_val)
    return classifier


def _training_set(upright, labels, rng, rotation_task: bool = True):
    """Each image upright (class target; rotation target 0) and once more turned by a random quarter
    turn (rotation target only). Returns (images, targets, sample weights) per output head.
    Without the rotation task: the upright images and their classes."""
    if not rotation_task:
        return upright, {"logits": labels}, {"logits": np.ones(len(upright), np.float32)}
    turns = rng.integers(1, NUM_ROTATIONS, size=len(upright))
    turned = np.stack([np.rot90(image, k, axes=(0, 1)) for image, k in zip(upright, turns)])
    x_train = np.concatenate([upright, turned])
    targets = {"rotation_logits": np.concatenate([np.zeros(len(upright), np.int64), turns])}
    weights = {"rotation_logits": np.ones(x_train.shape[0], np.float32)}
    if labels is not None:
        targets["logits"] = np.concatenate([labels, labels])
        # Weight 2 on the upright half: Keras averages over the whole batch, so the class loss
        # keeps the scale it would have without the turned copies.
        weights["logits"] = np.concatenate([np.full(len(upright), 2.0, np.float32),
                                            np.zeros(len(upright), np.float32)])
    return x_train, targets, weights


def _fit(model, x_train, targets, weights, epochs, batch_size, learning_rate, num_images, progress=True,
         validation=None, patience: int | None = None) -> None:
    keras = _keras()
    steps = epochs * int(np.ceil(x_train.shape[0] / batch_size))
    # Cosine decay to 0 lets a short fixed schedule converge without tuning the epoch count.
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # Training accuracy per head for the progress lines (the upright images only, for the class head:
    # the turned copies have weight 0 there).
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss={name: loss for name in targets},
                  weighted_metrics={name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
                                    for name in targets})
    callbacks = [_progress_callback(epochs, num_images, "rotation" if "rotation_logits" in targets else "class")] \
        if progress else []
    if patience is not None:
        # The class head's accuracy when there are classes (the one-head model names it plain "accuracy").
        watched = "val_logits_accuracy" if "logits" in targets and len(targets) > 1 else "val_accuracy"
        callbacks.append(keras.callbacks.EarlyStopping(monitor=watched, mode="max", patience=patience,
                                                       restore_best_weights=True))
    model.fit(x_train, targets, sample_weight=weights, batch_size=batch_size, epochs=epochs, shuffle=True,
              verbose=0, callbacks=callbacks, validation_data=validation)


def _held_out_accuracy(classifier, images, labels, rng) -> float:
    """Class accuracy on the held-out images, or (without labels) accuracy at telling their random
    quarter turns apart."""
    if labels is None:
        labels = rng.integers(0, NUM_ROTATIONS, size=len(images))
        images = np.stack([np.rot90(image, k, axes=(0, 1)) for image, k in zip(images, labels)])
    predicted = classifier.predict_proba(images).argmax(axis=1)
    return float(np.mean(predicted == labels))


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
        logger.info("domain classifier: trained before for this data version (%s): loaded", final)
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
