"""Writes N generated images (PNG files + a grid) from a push directory or a running server.

    # 500 images of class 3 from the newest pushed version
    python -m tfx_gan.server.generate --push_dir serving/gan --num_images 500 --label 3
    # the same through a server started with tfx_gan.server.server
    python -m tfx_gan.server.generate --server http://127.0.0.1:8501 --num_images 500 --label 3
    # a class by its name (the data's folder names, kept in gan_metadata.json as class_names)
    python -m tfx_gan.server.generate --push_dir serving/shapes --num_images 20 --label square

Both paths call the generator's ``generate_png`` signature (see training/export.py) in
chunks of --batch_size; chunk i uses a seed derived from --seed with numpy's SeedSequence, so the
same --seed and --batch_size give the same images from either source. A conditional model without
--label gets labels 0, 1, ..., K-1, 0, 1, ... (K from the exported gan_metadata.json), and its
grid.png has one column per class.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import math
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from tfx_gan.server.predict_format import classes_text
from tfx_gan.common.errors import UserError
from tfx_gan.common.layout import list_versions
from tfx_gan.server.loaded_model import ModelNotFound
from tfx_gan.server.model_store import load_latest
from tfx_gan.server.model_config import validate_model_name

SIGNATURE = "generate_png"
DEFAULT_OUT_DIR = os.path.join("outputs", "generated")


class GenerateError(UserError):
    """A user-facing failure; exit_code 2 for bad input, 1 for failures of the source."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def chunk_seeds(seed: int, num_chunks: int) -> list[int]:
    """Non-negative int32 seeds, one per chunk, all determined by ``seed``."""
    state = np.random.SeedSequence(seed).generate_state(num_chunks, dtype=np.uint32)
    return [int(s & 0x7FFFFFFF) for s in state]


class _Source:
    version: int
    conditional: bool
    num_classes: int | None
    class_names: list[str] | None  # index = label; None when the model does not record them
    description: str

    def generate(self, num_images: int, seed: int, labels: list[int] | None) -> list[bytes]:
        raise NotImplementedError


class PushDirSource(_Source):
    """The newest complete version in a push directory, loaded in this process."""

    def __init__(self, push_dir: str, settle_s: float = 1.0):

        if not os.path.isdir(push_dir) and "://" not in push_dir:
            raise GenerateError(f"push directory {push_dir!r} does not exist")
        if not list_versions(push_dir):
            raise GenerateError(f"push directory {push_dir!r} has no version directories (<push_dir>/<integer>/saved_model.pb)")
        try:
            self.model = load_latest(push_dir, name="generator", settle_s=settle_s)
        except ModelNotFound as exc:
            raise GenerateError(str(exc)) from None
        if SIGNATURE not in self.model.signatures:
            raise GenerateError(f"{self.model.path} has no {SIGNATURE!r} signature (see training/export.py)")
        self.version = self.model.version
        self.conditional = "labels" in self.model.signatures[SIGNATURE].inputs
        self.num_classes = (self.model.gan_metadata or {}).get("num_classes")
        self.class_names = (self.model.gan_metadata or {}).get("class_names")
        self.description = f"push directory {push_dir}, version {self.version}"

    def generate(self, num_images, seed, labels):
        import tensorflow as tf

        feed = {"num_images": tf.constant(num_images, tf.int32), "seed": tf.constant(seed, tf.int32)}
        if labels is not None:
            feed["labels"] = tf.constant(labels, tf.int32)
        try:
            outputs = self.model.signatures[SIGNATURE].function(**feed)
        except tf.errors.InvalidArgumentError as exc:
            raise GenerateError(exc.message.split("\n")[0]) from None
        return [bytes(b) for b in next(iter(outputs.values())).numpy()]


class ServerSource(_Source):
    """A running server speaking TF Serving's REST API (tfx_gan.server.server or TF Serving)."""

    def __init__(self, url: str, model_name: str, timeout_s: float = 120.0):

        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise GenerateError(f"--server must be an http(s) URL like http://127.0.0.1:8501, got {url!r}")
        try:
            self.model_name = validate_model_name(model_name)
        except ValueError as exc:
            raise GenerateError(str(exc)) from None
        self.base = url.rstrip("/")
        self.timeout_s = timeout_s
        meta = self._call("GET", f"/v1/models/{self.model_name}/metadata")
        self.version = int(meta["model_spec"]["version"])
        signatures = meta["metadata"]["signature_def"]["signature_def"]
        if SIGNATURE not in signatures:
            raise GenerateError(f"model {model_name!r} on {url} has no {SIGNATURE!r} signature", exit_code=1)
        self.conditional = "labels" in signatures[SIGNATURE]["inputs"]
        self.num_classes = (meta["metadata"].get("gan_metadata") or {}).get("num_classes")
        self.class_names = (meta["metadata"].get("gan_metadata") or {}).get("class_names")
        self.description = f"server {self.base}, model {model_name}, version {self.version}"

    def _call(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", "")
            except ValueError:
                message = ""
            code = 2 if exc.code == 400 else 1
            raise GenerateError(f"server answered {exc.code} for {path}: {message or exc.reason}", exit_code=code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise GenerateError(f"cannot reach {self.base}: {getattr(exc, 'reason', exc)}", exit_code=1) from None

    def generate(self, num_images, seed, labels):
        inputs = {"num_images": num_images, "seed": seed}
        if labels is not None:
            inputs["labels"] = labels
        # Pinned to the version read at start: a hot swap mid-run gives a clear 404, not a mix.
        answer = self._call(
            "POST",
            f"/v1/models/{self.model_name}/versions/{self.version}:predict",
            {"signature_name": SIGNATURE, "inputs": inputs},
        )
        outputs = answer["outputs"]
        if isinstance(outputs, dict) and "b64" not in outputs:
            outputs = outputs["png_bytes"]
        return [base64.b64decode(v["b64"]) if isinstance(v, dict) else v.encode("latin-1") for v in outputs]


def resolve_label(label: str | int | None, source: _Source) -> int | None:
    """--label as the class index the model takes: a class name (the model's class_names) or an
    integer index."""
    if label is None or isinstance(label, int):
        return label
    if not source.conditional:
        raise GenerateError(f"--label given, but the model ({source.description}) is unconditional")
    names = source.class_names or []
    if label in names:  # a name first: folder names may look like numbers ("0".."9")
        return names.index(label)
    try:
        return int(label)
    except ValueError:
        raise GenerateError(f"--label {label!r} is not a class of the model ({source.description}); its labels: "
                            f"{classes_text(source.num_classes, source.class_names)}") from None


def generate_pngs(source: _Source, num_images: int, seed: int = 0, label: int | None = None, batch_size: int = 64) -> list[bytes]:
    """``num_images`` PNG byte strings from ``source``, in chunks of ``batch_size``."""
    if num_images <= 0:
        raise GenerateError(f"--num_images must be positive, got {num_images}")
    if batch_size <= 0:
        raise GenerateError(f"--batch_size must be positive, got {batch_size}")
    if seed < 0 or seed > 2**31 - 1:
        raise GenerateError(f"--seed must be in [0, 2**31), got {seed}")
    if label is not None:
        if not source.conditional:
            raise GenerateError(f"--label given, but the model ({source.description}) is unconditional")
        if label < 0 or (source.num_classes is not None and label >= source.num_classes):
            classes = classes_text(source.num_classes, source.class_names) if source.num_classes else "0..K-1"
            raise GenerateError(f"--label {label} is out of range: the model's labels are {classes}")
    elif source.conditional and not source.num_classes:
        raise GenerateError("the model is conditional and does not say how many classes it has: pass --label")
    pngs: list[bytes] = []
    seeds = chunk_seeds(seed, math.ceil(num_images / batch_size))
    for chunk, chunk_seed in enumerate(seeds):
        start = chunk * batch_size
        count = min(batch_size, num_images - start)
        if not source.conditional:
            labels = None
        elif label is not None:
            labels = [label]  # broadcast by the signature
        else:
            labels = [int(i % source.num_classes) for i in range(start, start + count)]
        batch = source.generate(count, chunk_seed, labels)
        if len(batch) != count:
            raise GenerateError(f"asked for {count} images, got {len(batch)}", exit_code=1)
        pngs.extend(batch)
    return pngs


def make_grid(pngs: list[bytes], padding: int = 2, columns: int | None = None):
    """One PIL image with the given PNGs in rows of ``columns`` (default: a near-square grid)."""
    from PIL import Image

    images = [Image.open(io.BytesIO(p)) for p in pngs]
    mode = "RGB" if any(im.mode not in ("L", "1") for im in images) else "L"
    images = [im.convert(mode) for im in images]
    width, height = images[0].size
    cols = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    grid = Image.new(mode, (cols * (width + padding) + padding, rows * (height + padding) + padding), 0)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid.paste(im, (padding + c * (width + padding), padding + r * (height + padding)))
    return grid


def write_outputs(pngs: list[bytes], out_dir: str, prefix: str = "img", grid_max: int = 1024, manifest: dict | None = None,
                  grid_columns: int | None = None) -> dict:
    """Writes <out_dir>/<prefix>_NNNNN.png, grid.png (first ``grid_max`` images, ``grid_columns``
    per row) and generate.json."""
    os.makedirs(out_dir, exist_ok=True)
    digits = max(5, len(str(len(pngs) - 1)))
    files = []
    for i, png in enumerate(pngs):
        path = os.path.join(out_dir, f"{prefix}_{i:0{digits}d}.png")
        with open(path, "wb") as f:
            f.write(png)
        files.append(path)
    grid_path = None
    if grid_max > 0 and pngs:
        grid_path = os.path.join(out_dir, "grid.png")
        make_grid(pngs[:grid_max], columns=grid_columns).save(grid_path)
    summary = dict(manifest or {}, num_images=len(pngs), files=[os.path.basename(f) for f in files], grid=grid_path and os.path.basename(grid_path))
    with open(os.path.join(out_dir, "generate.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return {"files": files, "grid": grid_path, "manifest": summary}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the `generate` command."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--push_dir", help="push directory; its newest complete version is loaded in-process")
    source.add_argument("--server", help="URL of a running server, e.g. http://127.0.0.1:8501")
    parser.add_argument("--model_name", default="gan", help="model name on the server (default: %(default)s)")
    parser.add_argument("-n", "--num_images", type=int, default=64, help="images to write (default: %(default)s)")
    parser.add_argument("--label", help="class for a conditional model: its name (e.g. square) or index "
                        "(default: every class in turn, one grid column each)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed; the same seed and batch size give the same images (default: %(default)s)")
    parser.add_argument("--out_dir", "--out", dest="out_dir", default=DEFAULT_OUT_DIR,
                        help="folder to write the PNGs, grid.png and generate.json to (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=64, help="images per generate_png call (default: %(default)s)")
    parser.add_argument("--prefix", default="img", help="file name prefix (default: %(default)s)")
    parser.add_argument("--grid_max", type=int, default=1024, help="images in grid.png; 0 = no grid (default: %(default)s)")
    parser.add_argument("--settle_s", type=float, default=1.0,
                        help="skip versions modified less than this many seconds ago (default: %(default)s)")
    parser.add_argument("--timeout_s", type=float, default=120.0, help="HTTP timeout per call (default: %(default)s)")


def run(args) -> int:
    """Generates and writes the images. Returns a process exit status (0, 1 failure, 2 bad input)."""
    try:
        if args.num_images <= 0:
            raise GenerateError(f"--num_images must be positive, got {args.num_images}")
        if args.push_dir:
            source: _Source = PushDirSource(args.push_dir, settle_s=args.settle_s)
        else:
            source = ServerSource(args.server, args.model_name, timeout_s=args.timeout_s)
        label = resolve_label(args.label, source)
        pngs = generate_pngs(source, args.num_images, seed=args.seed, label=label, batch_size=args.batch_size)
        manifest = {
            "source": source.description,
            "version": source.version,
            "seed": args.seed,
            "batch_size": args.batch_size,
            "label": label,
            "class_name": source.class_names[label] if label is not None and source.class_names else None,
        }
        every_class = source.conditional and label is None and source.num_classes
        result = write_outputs(pngs, args.out_dir, prefix=args.prefix, grid_max=args.grid_max, manifest=manifest,
                               grid_columns=min(source.num_classes, len(pngs)) if every_class else None)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    grid = f" and {result['grid']}" if result["grid"] else ""
    which = ""
    if manifest["label"] is not None:
        which = f" of class {manifest['label']}" + (f" ({manifest['class_name']})" if manifest["class_name"] else "")
    print(f"wrote {len(result['files'])} images{which} to {args.out_dir}{grid} ({source.description})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfx_gan.server.generate", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
