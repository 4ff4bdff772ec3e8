"""The README's own-data recipe, exactly as a user follows it: ./gan run as a command, from a
folder of their own outside the repository.

A folder of labelled images (circle/square/triangle, drawn here), ``./gan make-schema``, a copy of
the shipped config with pipeline_name, data.input_base and data.schema_file edited, ``./gan run``.
Nothing is mocked; training is tiny (60 steps) and the blessing thresholds are off, as the
README's quick-try line does. Then: the generator is pushed under ``<cwd>/serving/<name>`` with the
class names, nothing was written into the repository's outputs/ or serving/, and the train/eval
split is the one the image bytes alone decide (so it is the same wherever the data lies).
"""
import hashlib
import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from tfx_gan.common import layout

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN = os.path.join(REPO, "gan")
CLASSES = ("circle", "square", "triangle")
# The README's "quick try" settings: ~2 minutes, enough to see every stage work, not a good model.
QUICK_TRY = ["--set", "training.train_steps=60", "--set", "evaluation.classifier_epochs=1",
             "--set", "evaluation.extractors=[domain_cnn]", "--set", "evaluation.num_draws=2",
             "--set", "evaluation.max_fid_over_floor=null", "--set", "evaluation.min_novelty=null",
             "--set", "evaluation.min_class_share=null", "--set", "evaluation.cas_seeds=1",
             "--set", "evaluation.cas_epochs=1"]
PER_CLASS = 50  # ~30 held out: the evaluation needs >= 10 per half (evaluation/reference.py)


def draw_shapes(span_dir: str) -> None:
    """28x28 grayscale shapes of random size and place, one folder per class."""
    rng = np.random.default_rng(0)
    for name in CLASSES:
        os.makedirs(os.path.join(span_dir, name))
        for i in range(PER_CLASS):
            image = Image.new("L", (28, 28), 0)
            size = int(rng.integers(10, 20))
            x, y = (int(v) for v in rng.integers(2, 26 - size, 2))
            box = (x, y, x + size, y + size)
            draw = ImageDraw.Draw(image)
            if name == "circle":
                draw.ellipse(box, fill=255)
            elif name == "square":
                draw.rectangle(box, fill=255)
            else:
                draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill=255)
            image.save(os.path.join(span_dir, name, f"{i:03d}.png"))


def gan(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([GAN, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def write_recipe_config(path, pipeline_name: str, input_base_line: str) -> None:
    """A copy of the shipped config with the README's three lines edited (pipeline_name,
    data.input_base, data.schema_file: my_schema.pbtxt)."""
    config_text = open(os.path.join(REPO, "pipeline", "configs", "digits.yaml")).read()
    edits = {"pipeline_name: gan-digits": f"pipeline_name: {pipeline_name}",
             "input_base: ../../data/digits": input_base_line,
             "schema_file: ../../data/schema/digits/schema.pbtxt": "schema_file: my_schema.pbtxt"}
    for old, new in edits.items():
        assert config_text.count(old) == 1, old
        config_text = config_text.replace(old, new)
    path.write_text(config_text)


def generate_images(work, push_dir: str, count: int, label: str) -> str:
    """``gan generate`` of ``count`` images of ``label`` into work/<label>s; the first one's path."""
    out = work / f"{label}s"
    generated = gan("generate", "--push_dir", push_dir, "--num_images", str(count), "--label", label,
                    "--out", str(out), cwd=work)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    pngs = sorted(p for p in os.listdir(out) if p.endswith(".png") and p != "grid.png")
    assert len(pngs) == count
    return str(out / pngs[0])


def files_under(*roots: str) -> dict[str, float]:
    """{path: mtime} of every file under the roots (absent roots: none)."""
    found = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                found[path] = os.path.getmtime(path)
    return found


def split_of(png: bytes, train_buckets: int = 4, eval_buckets: int = 1) -> str:
    """What TFX's ExampleGen does with SplitConfig.partition_feature_name = "image": the bucket is the
    sha256 of that feature (serialised), so it depends on the image bytes and on nothing else."""
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])).SerializeToString(deterministic=True)
    bucket = int(hashlib.sha256(feature).hexdigest(), 16) % (train_buckets + eval_buckets)
    return "train" if bucket < train_buckets else "eval"


def test_the_readme_own_data_recipe_from_a_folder_outside_the_repository(tmp_path):
    work = tmp_path / "shapes-project"
    span = work / "my_data" / "span-1"
    draw_shapes(str(span))
    # What the issue saw: a copied config pushed into (and compared with) the digits pipeline's folders.
    digits_folders = (os.path.join(REPO, "outputs", "gan-digits"), os.path.join(REPO, "serving", "gan-digits"))
    digits_files_before = files_under(*digits_folders)

    # 1. The schema, from the first span.
    made = gan("make-schema", "--span_dir", "my_data/span-1", "--out", "my_schema.pbtxt", cwd=work)
    assert made.returncode == 0, made.stdout + made.stderr
    schema_text = (work / "my_schema.pbtxt").read_text()
    assert all(f'comment: "class {i}: {name}"' in schema_text for i, name in enumerate(CLASSES))

    # 2. A copy of the shipped config, three lines edited as the README says.
    write_recipe_config(work / "my.yaml", "shapes", "input_base: my_data")

    # 3. The run: the README's quick try (tiny training, one feature space, thresholds off).
    run = gan("run", "--config", "my.yaml", *QUICK_TRY, cwd=work)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]

    # Pushed under the working directory, in this pipeline's own folder, with the class names.
    versions = layout.list_versions(str(work / "serving" / "shapes"))
    assert len(versions) == 1, run.stdout[-2000:]
    metadata = layout.read_metadata(versions[0][1])
    assert metadata["num_classes"] == 3 and metadata["class_names"] == list(CLASSES)
    assert os.path.isfile(work / "outputs" / "shapes" / "metadata.sqlite")
    assert sorted(os.listdir(work)) == ["my.yaml", "my_data", "my_schema.pbtxt", "outputs", "serving"]  # before report
    # ...and nothing into the repository's folders: none of its own, the digits pipeline's untouched.
    for folder in ("outputs", "serving"):
        assert not os.path.exists(os.path.join(REPO, folder, "shapes"))
    assert files_under(*digits_folders) == digits_files_before

    # The split: each image's side follows from its bytes alone, not from the path it was read from.
    examples_root = work / "outputs" / "shapes" / "pipeline_root" / "ImageExampleGen" / "examples"
    (examples_dir,) = os.listdir(examples_root)
    seen = {}
    for split in ("train", "eval"):
        for record in tf.data.TFRecordDataset(layout.split_files(str(examples_root / examples_dir), split),
                                              compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            seen[feature["source"].bytes_list.value[0].decode()] = split
    expected = {str(path): split_of(path.read_bytes()) for path in span.glob("*/*.png")}
    assert seen == expected
    assert 10 <= list(expected.values()).count("eval") <= 50

    with open(work / "outputs" / "shapes" / "last_run.json") as f:
        summary = json.load(f)
    assert summary["push_destination"] == str(work / "serving" / "shapes")
    assert summary["reason"].endswith("(no model is serving yet)")  # its own push folder: no digits baseline

    # 4. The report of the run and "20 images of class square", as the recipe's last two lines.
    reported = gan("report", "--config", "my.yaml", cwd=work)
    assert reported.returncode == 0, reported.stdout + reported.stderr
    (page,) = os.listdir(work / "outputs" / "shapes" / "reports")
    html = (work / "outputs" / "shapes" / "reports" / page).read_text(encoding="utf-8")
    assert all(name in html for name in CLASSES) and 'src="http' not in html
    with Image.open(generate_images(work, "serving/shapes", 20, "square")) as image:
        assert image.size == (28, 28)


def test_a_missing_span_folder_is_one_line_with_exit_code_2(tmp_path):
    (tmp_path / "my_data").mkdir()
    made = gan("make-schema", "--span_dir", "my_data/span-1", "--out", "my_schema.pbtxt", cwd=tmp_path)
    assert made.returncode == 2
    error_lines = [line for line in (made.stdout + made.stderr).splitlines() if line.startswith("error")]
    assert error_lines == ["error: span folder not found: my_data/span-1; give one span-<N>/ folder of your data, "
                           "which holds the images"]
    assert not (tmp_path / "my_schema.pbtxt").exists()


def test_a_folder_of_mixed_size_photos_with_one_added_line(tmp_path):
    """The recipe on photos as a user has them (the bundled ``photo_crops``: JPEG and PNG crops of
    48-240 px sides at 1:2 to 2:1, grayscale, RGBA and EXIF-rotated ones among them), with the one
    line the README adds, ``data.image_size: 64``: a pushed 64x64x3 generator."""
    work = tmp_path / "photos-project"
    work.mkdir()
    written = gan("make-data", "--dataset", "photo_crops", "--out_dir", "my_photos", cwd=work)
    assert written.returncode == 0, written.stderr
    sizes = {Image.open(p).size for p in (work / "my_photos" / "span-1").glob("*/*")}
    assert len(sizes) > 50

    made = gan("make-schema", "--span_dir", "my_photos/span-1", "--out", "my_schema.pbtxt",
               "--set", "data.image_size=64", cwd=work)
    assert made.returncode == 0, made.stdout + made.stderr
    write_recipe_config(work / "my.yaml", "photos", "input_base: my_photos\n  image_size: 64")  # the added line

    run = gan("run", "--config", "my.yaml", *QUICK_TRY, cwd=work)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    # The pipeline's own lines are log records, which ./gan shows on stderr one line each.
    assert "image transform: size 64x64 (center_crop)" in run.stderr
    assert "data.channels not set: 3 (some images are in colour)" in run.stderr

    versions = layout.list_versions(str(work / "serving" / "photos"))
    assert len(versions) == 1, run.stdout[-2000:]
    metadata = layout.read_metadata(versions[0][1])
    assert metadata["image_shape"] == [64, 64, 3] and metadata["class_names"] == ["china", "flower"]
    assert metadata["image_transform"] == {"size": [64, 64], "resize": "center_crop", "channels": 3,
                                           "background": [255, 255, 255], "convert_16bit": False}
    with Image.open(generate_images(work, "serving/photos", 2, "flower")) as image:
        assert image.size == (64, 64) and image.mode == "RGB"
