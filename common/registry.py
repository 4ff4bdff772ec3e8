"""Name -> builder registries: architectures, losses, feature extractors, metrics.

Each library module registers what it defines, next to its definition::

    ARCHITECTURES = Registry("architecture")

    @ARCHITECTURES.register("dcgan_28", "TF's DCGAN tutorial model", shapes=((28, 28, 1),))
    def build_dcgan_28(...): ...

Config validation, error messages and the README's tables all read the same registry, so a new
entry is one decorated function (as StyleGAN2-ADA's ``metrics/metric_main.py`` registers metrics).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from tfx_gan.common.options import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable
    summary: str
    info: dict = field(default_factory=dict)  # e.g. an architecture's image shapes


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, summary: str = "", **info: Any) -> Callable:
        """Decorator: registers ``fn`` under ``name``; ``info`` is free-form (shapes, flags)."""
        def decorate(fn: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, fn, summary, dict(info))
            return fn
        return decorate

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __iter__(self):
        return iter(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def entry(self, name: str, key: str | None = None) -> Entry:
        """The entry, or a ConfigError naming ``key`` (e.g. ``training.architecture``) and the choices."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"{key or self.kind}: {name!r} is not one of: {', '.join(self.names())}") from None

    def get(self, name: str, key: str | None = None) -> Callable:
        return self.entry(name, key).build

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def markdown_table(self, columns: tuple[str, ...] = ()) -> str:
        """| name | summary | <info columns> |, for the README (tests check it matches)."""
        head = ["`" + self.kind + "`", "what", *columns]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in self.entries():
            rows.append("| " + " | ".join([f"`{e.name}`", e.summary, *(str(e.info.get(c, "")) for c in columns)]) + " |")
        return "\n".join(rows)
