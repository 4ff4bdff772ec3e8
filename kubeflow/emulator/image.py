"""What kubeflow/Dockerfile puts into the image, staged in a local folder for the launcher.

The launcher runs each task with the locked environment of this checkout (.venv, synced from
uv.lock, which is what the Dockerfile installs) and only the files the Dockerfile COPYs (minus what
.dockerignore leaves out of the build context), with the Dockerfile's ENV and WORKDIR. A module the
image lacks therefore fails the launch as it would fail the pod. Instructions the launcher cannot
reproduce (ADD, COPY --from, ...) are refused by name.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
from tfx_gan.common.errors import UserError

# RUN lines install the locked environment (the launcher uses .venv for it); the rest are metadata.
_IGNORED = {"FROM", "RUN", "ARG", "LABEL", "ENTRYPOINT", "CMD", "USER", "EXPOSE", "SHELL"}


class DockerfileError(UserError, ValueError):
    """A Dockerfile instruction the launcher cannot reproduce."""


@dataclasses.dataclass(frozen=True)
class StagedImage:
    root: str          # the staged image file system: <root>/opt/tfx-gan/... for /opt/tfx-gan/...
    workdir: str       # the image's WORKDIR (an image path)
    env: dict          # the Dockerfile's ENV, values as written (image paths)

    def local(self, image_path: str) -> str:
        """Where an absolute image path lies in the staged copy."""
        return os.path.join(self.root, image_path.lstrip("/"))


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    with open(dockerfile, encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())  # line continuations
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), (line.split(None, 1) + [""])[1])
            for line in lines if line and not line.startswith("#")]


def _ignore_patterns(context: str) -> list[tuple[bool, re.Pattern]]:
    """.dockerignore as (exclude?, regex) pairs, last match wins (Docker's rule)."""
    path = os.path.join(context, ".dockerignore")
    patterns = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                exclude = not line.startswith("!")
                glob = os.path.normpath(line.lstrip("!").strip("/"))
                tokens = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
                regex = "".join(tokens.get(part, re.escape(part)) for part in re.split(r"(\*\*/|\*\*|\*|\?)", glob))
                patterns.append((exclude, re.compile(f"^{regex}(/.*)?$")))
    return patterns


def _ignored(relative_path: str, patterns) -> bool:
    ignored = False
    for exclude, regex in patterns:
        if regex.match(relative_path):
            ignored = exclude
    return ignored


def stage(dockerfile: str, context: str, dest: str) -> StagedImage:
    """Copies what the Dockerfile's COPY lines take from ``context`` into ``dest`` (an empty folder)."""
    patterns = _ignore_patterns(context)
    workdir, env = "/", {}
    for instruction, rest in _instructions(dockerfile):
        if instruction in _IGNORED:
            continue
        if instruction == "WORKDIR":
            workdir = os.path.join(workdir, rest.strip())
        elif instruction == "ENV":
            for item in shlex.split(rest):
                name, sep, value = item.partition("=")
                if not sep:
                    raise DockerfileError(f"{dockerfile}: ENV {rest!r}: write ENV NAME=VALUE")
                env[name] = value
        elif instruction == "COPY":
            *sources, target = shlex.split(rest)
            if any(s.startswith("--") for s in sources) or not sources:
                raise DockerfileError(f"{dockerfile}: COPY {rest!r}: only plain COPY SRC... DEST is staged")
            target = os.path.join(workdir, target)
            into_dir = target.endswith("/") or len(sources) > 1
            for source in sources:
                source_path = os.path.join(context, source)
                if not os.path.exists(source_path) or _ignored(os.path.normpath(source), patterns):
                    raise DockerfileError(f"{dockerfile}: COPY {source}: not in the build context")
                if os.path.isdir(source_path):
                    _copy_tree(context, os.path.normpath(source), os.path.join(dest, target.lstrip("/")), patterns)
                else:
                    local = os.path.join(dest, target.lstrip("/"))
                    local = os.path.join(local, os.path.basename(source)) if into_dir else local
                    os.makedirs(os.path.dirname(local), exist_ok=True)
                    shutil.copy2(source_path, local)
        else:
            raise DockerfileError(f"{dockerfile}: {instruction} is not reproduced by the launcher")
    return StagedImage(root=dest, workdir=workdir, env=env)


def _copy_tree(context: str, source: str, dest: str, patterns) -> None:
    """Docker's COPY of a folder: files as files, symbolic links as links (tfx_gan/<package>)."""
    for directory, dirs, files in os.walk(os.path.join(context, source)):
        relative_dir = os.path.normpath(os.path.relpath(directory, context))
        dirs[:] = [d for d in dirs if not _ignored(os.path.normpath(os.path.join(relative_dir, d)), patterns)]
        links = [d for d in dirs if os.path.islink(os.path.join(directory, d))]
        dirs[:] = [d for d in dirs if d not in links]
        for name in files + links:
            relative = os.path.normpath(os.path.join(relative_dir, name))
            if _ignored(relative, patterns):
                continue
            local = os.path.join(dest, os.path.relpath(relative, source))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            if os.path.islink(os.path.join(context, relative)):
                os.symlink(os.readlink(os.path.join(context, relative)), local)
            else:
                shutil.copy2(os.path.join(context, relative), local)
