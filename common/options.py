"""One way to declare and validate options: a dataclass per stage, checked once at the edge.

Each library defines its options beside itself (``training/config.py``: TrainConfig;
``evaluation/evaluate.py``: EvaluationConfig; ``pipeline/config.py``: the data section) as a
dataclass whose fields carry their rules in ``metadata``::

    num_samples: int = option(1000, minimum=2)
    max_fid: float | None = option(None, minimum=0, exclusive=True)
    loss: str = option("bce", choices=LOSSES.names)      # a registry's names (a callable)

``parse_options(cls, mapping, prefix)`` rejects unknown keys, coerces YAML values to the field
types and checks the rules, with messages that name ``<prefix>.<key>``, the value and what is
allowed. A class may add cross-field checks in ``check(self, prefix)``. Once parsed, an options
object is trusted: libraries do not check it again.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, TypeVar

import yaml
from tfx_gan.common.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A bad configuration value; the message names the key and what is allowed."""

    label = "config error"


def option(default: Any = dataclasses.MISSING, *, minimum: float | None = None, maximum: float | None = None,
           exclusive: bool = False, exclusive_max: bool = False, choices: Callable[[], tuple] | tuple | None = None,
           help: str = "") -> Any:  # noqa: A002 (the natural name)
    """A dataclass field with validation rules in its metadata."""
    meta = {"minimum": minimum, "maximum": maximum, "exclusive": exclusive, "exclusive_max": exclusive_max,
            "choices": choices, "help": help}
    return dataclasses.field(default=default, metadata=meta)


def coerce(key: str, typ: Any, value: Any) -> Any:
    """YAML value -> field type. ints are accepted for floats; numeric strings for floats (PyYAML
    reads ``2e-4`` without a dot as a string); ``float | None`` accepts null."""
    typ = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    typ = typ.replace(" ", "")
    if typ.endswith("|None") or typ.startswith("Optional["):
        if value is None:
            return None
        typ = typ[:-5] if typ.endswith("|None") else typ[len("Optional["):-1]
    if typ == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if typ == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if typ == "float":
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None or not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return number
    if typ == "str":
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if typ == "tuple[str,...]":  # a YAML list of names, or one comma-separated string
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, (list, tuple)) and items and all(isinstance(v, str) and v.strip() for v in items):
            return tuple(v.strip() for v in items)
        raise ConfigError(f"{key}: expected a non-empty list of names, got {value!r}")
    return value


def check_rules(key: str, value: Any, meta: dict) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices is not None:
        allowed = tuple(choices() if callable(choices) else choices)
        for item in value if isinstance(value, tuple) else (value,):
            if item not in allowed:
                raise ConfigError(f"{key}: {item!r} is not one of: {', '.join(map(str, allowed))}")
    lo, hi = meta.get("minimum"), meta.get("maximum")
    too_low = lo is not None and (value <= lo if meta.get("exclusive") else value < lo)
    too_high = hi is not None and (value >= hi if meta.get("exclusive_max") else value > hi)
    if too_low or too_high:
        note = f" ({meta['help']})" if meta.get("help") else ""
        raise ConfigError(f"{key}: must be {range_rule(meta)}{note}, got {value!r}")


def range_rule(meta: dict) -> str | None:
    """A field's bounds as words: "> 0", "in [0, 1)", "<= 16"; None when it has none."""
    lo, hi = meta.get("minimum"), meta.get("maximum")
    if lo is not None and hi is not None:
        return f"in {'(' if meta.get('exclusive') else '['}{lo:g}, {hi:g}{')' if meta.get('exclusive_max') else ']'}"
    if lo is not None:
        return f"{'>' if meta.get('exclusive') else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if meta.get('exclusive_max') else '<='} {hi:g}"
    return None


def parse_options(cls: type[T], mapping: Any, prefix: str, prepare: Callable[[str, Any], Any] | None = None) -> T:
    """A validated ``cls`` from a (YAML-loaded) mapping; None means all defaults.

    ``prepare(name, value)`` may translate a raw value first (e.g. YAML 1.1 reads ``off`` as false)."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"{prefix}: expected a mapping, got {type(mapping).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in mapping if k not in fields)
    if unknown:
        raise ConfigError(f"{prefix}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        if name not in mapping:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{prefix}.{name} is required")
            continue
        raw = prepare(name, mapping[name]) if prepare else mapping[name]
        values[name] = coerce(f"{prefix}.{name}", f.type, raw)
        check_rules(f"{prefix}.{name}", values[name], dict(f.metadata))
    result = cls(**values)
    check = getattr(result, "check", None)
    if callable(check):
        check(prefix)
    return result


def options_to_dict(options: Any) -> dict:
    return dataclasses.asdict(options)


def parse_overrides(pairs: list[str]) -> dict:
    """``--set`` items -> the nested dict ``load_config`` merges: ``SECTION.KEY=VALUE`` sets one key
    of a section (``training.train_steps=200``), ``KEY=VALUE`` a top-level one; values are YAML.
    ./gan run, make-schema and the benchmarks all parse ``--set`` here."""
    overrides: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {pair!r}")
        section, _, name = key.rpartition(".")
        target = overrides.setdefault(section, {}) if section else overrides
        if not isinstance(target, dict):
            raise ConfigError(f"--set {pair!r}: {section!r} is not a section")
        target[name] = yaml.safe_load(value)
    return overrides
