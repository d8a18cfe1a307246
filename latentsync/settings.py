"""Typed settings: a YAML config (plus `key=value` overrides) checked once into frozen records.

Shared by the trainers and their datasets (latentsync/training/settings.py), the data-processing pipeline
(data_processing/settings.py) and the evaluation code (eval/settings.py). A record declares its keys as typed
fields; building it from the YAML checks that every declared key is there with the right type and range, and
stops with a `SettingsError` naming the file, the key and the value otherwise. Keys a record does not declare are ignored. The defaults live only in
the YAML files under latentsync/configs/; no field has a default in code. Records are frozen dataclasses, so
they pickle (worker processes get the same record) and nobody changes a setting after the check.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field, fields
from typing import Union, get_args, get_origin, get_type_hints

from omegaconf import DictConfig, OmegaConf

from latentsync.errors import InputError


class SettingsError(InputError):
    """A setting is missing, or has the wrong type or range; the message names the file, the key and the value."""


def at_least(low: int, unset: int | None = None):
    """A field whose value must be >= `low` (or exactly `unset`, the YAML's "not set" marker)."""
    return field(metadata={"min": low, "unset": unset})


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _optional(kind):
    """X for an `X | None` hint, else None."""
    if get_origin(kind) in (Union, types.UnionType):
        args = [a for a in get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(get_args(kind)) == 2:
            return args[0]
    return None


def _expected(kind) -> str:
    if _optional(kind) is not None:
        return f"{_expected(_optional(kind))} or null"
    if get_origin(kind) is tuple:
        return f"a list of {_expected(get_args(kind)[0])}"
    return _NAMES[kind]


def _convert(value, kind, where: str):
    """`value` as `kind` (bool, int, float, str, tuple[...], X | None); ints pass as floats, null as an empty
    string (a str field) or None (an `X | None` field)."""
    inner = _optional(kind)
    if inner is not None:
        return None if value is None else _convert(value, inner, where)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is str and (value is None or isinstance(value, str)):
        return value or ""
    if get_origin(kind) is tuple and isinstance(value, (list, tuple)):
        item = get_args(kind)[0]
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    raise SettingsError(f"{where} must be {_expected(kind)}, got {value!r}")


class Section:
    """One YAML mapping as a frozen record: every declared key is required, undeclared keys are ignored.
    A field typed with another `Section` is a nested mapping. Every subclass is made a frozen dataclass here,
    so a section is declared by its fields alone."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True)(cls)

    @classmethod
    def from_config(cls, cfg: DictConfig, source: str):
        """The whole config as this record: its fields are the config's top-level keys."""
        return cls.from_dict(OmegaConf.to_container(cfg, resolve=True), source)

    @classmethod
    def build(cls, cfg: DictConfig, name: str, source: str):
        """The config's `name:` section as this record."""
        section = cfg.get(name)
        if not isinstance(section, DictConfig):
            raise SettingsError(f"{source}: no '{name}:' section")
        return cls.from_dict(OmegaConf.to_container(section, resolve=True), source, prefix=f"{name}.")

    @classmethod
    def from_dict(cls, values: dict, source: str, prefix: str = ""):
        """The record from a plain mapping; `prefix` is where the mapping sits in the file (for messages)."""
        hints = get_type_hints(cls)
        built = {}
        for f in fields(cls):
            key, kind = prefix + f.name, hints[f.name]
            if isinstance(kind, type) and issubclass(kind, Section):
                if not isinstance(values.get(f.name), dict):
                    raise SettingsError(f"{source}: no '{key}:' section")
                built[f.name] = kind.from_dict(values[f.name], source, prefix=f"{key}.")
                continue
            where = f"{source}: {key}"
            if f.name not in values:
                raise SettingsError(f"{where} is missing")
            value = _convert(values[f.name], kind, where)
            low = f.metadata.get("min")
            if low is not None and value < low and value != f.metadata["unset"]:
                allowed = f" (or {f.metadata['unset']})" if f.metadata["unset"] is not None else ""
                raise SettingsError(f"{where} must be at least {low}{allowed}, got {value!r}")
            built[f.name] = value
        record = cls(**built)
        record.check(source)
        return record

    def check(self, source: str) -> None:
        """Rules between keys (none by default); the per-key types and ranges are checked while building."""
