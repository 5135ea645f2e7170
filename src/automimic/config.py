"""Typed configs from dataclasses, YAML files and ``--set key=value`` overrides (no code execution)."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain data (tuples become lists), ready for YAML."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from nested plain data, naming any unknown field."""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; valid: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, f"{where}.{key}")
        else:
            value = _typed(value, hint, f"{where}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


_SCALARS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` (plain YAML data) can stand for a field annotated ``hint`` (unknown hints pass)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in args
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple or origin is list or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args and (origin is list or (len(args) == 2 and args[1] is Ellipsis)) else None
        return item is None or all(_fits(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against ``hint`` (lists become tuples for tuple fields, ints floats for floats)."""
    if not _fits(value, hint):
        want = _SCALARS.get(hint) or (f"one of {list(get_args(hint))}" if get_origin(hint) is Literal else
                                      str(hint).replace("typing.", ""))
        raise ValueError(f"{where}: expected {want}, got {value!r}")
    if isinstance(value, list) and (get_origin(hint) is tuple or "tuple" in str(hint)):
        return tuple(value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def _section(cls: type | None, key: str) -> type | None:
    """The dataclass type of field ``key`` of ``cls`` (``None`` for free-form fields such as dicts)."""
    if cls is None:
        return None
    hint = get_type_hints(cls).get(key)
    return hint if dataclasses.is_dataclass(hint) else None


def apply_overrides(data: dict[str, Any], overrides: list[str], cls: type | None = None) -> dict[str, Any]:
    """Apply ``a.b=value`` strings to nested ``data`` (values parsed as YAML scalars/lists/maps).

    With ``cls`` given, names inside dataclass sections are checked; free-form dict fields (such as
    ``policy_config``) accept new keys.
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        node, node_cls, strict = data, cls, True
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"--set {key}: {part!r} is not a config section")
            node_cls = _section(node_cls, part)
            strict = node_cls is not None
            node = node[part]
        if strict and parts[-1] not in node:
            raise ValueError(f"--set {key}: unknown field {parts[-1]!r}; valid: {sorted(node)}")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                base: T | None = None) -> T:
    """Defaults (or ``base``), then the YAML file at ``path``, then ``overrides``; validated by ``cls``."""
    data = to_dict(base if base is not None else cls())
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such config file") from None
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid YAML ({type(err).__name__}); expected a mapping of config "
                             "fields") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of config fields")
        _merge(data, loaded, str(path), cls)
    apply_overrides(data, overrides or [], cls)
    _refuse_section_seeds(data, cls)
    return from_dict(cls, data)


def _refuse_section_seeds(data: dict[str, Any], cls: type) -> None:
    """A run seeds every stage from its own ``seed``; a ``seed`` set inside a section (e.g.
    ``train.seed``) would be written to ``config.yaml`` and then silently replaced, so it is refused."""
    if "seed" not in data:
        return
    for key, value in data.items():
        section = _section(cls, key)
        if section is not None and isinstance(value, dict) and value.get("seed", 0) != 0:
            raise ValueError(f"{key}.seed is replaced by the run's seed; set seed (--seed) instead")


def _merge(into: dict[str, Any], new: dict[str, Any], where: str, cls: type | None) -> None:
    for key, value in new.items():
        if key not in into:
            raise ValueError(f"{where}: unknown field {key!r}; valid: {sorted(into)}")
        section = _section(cls, key)
        if section is not None and isinstance(value, dict):
            _merge(into[key], value, f"{where}.{key}", section)
        else:
            into[key] = value
