"""Configuration: one documented TOML file, overridable by SORI_* variables.

Precedence, lowest first: the defaults in `settings` (which `config.toml` at the
repository root mirrors, checked by a test), the file given by `--config` or
`SORI_CONFIG`, then `SORI_<SECTION>_<KEY>` environment variables. Every value
is validated at start-up and a problem names the key it came from.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

# The settings live in the leaf module; re-exported here for the CLI and the tests.
from settings import AudioRung as AudioRung
from settings import Config as Config
from settings import ConfigError as ConfigError
from settings import LiveConfig as LiveConfig
from settings import OriginConfig as OriginConfig
from settings import PackagerConfig as PackagerConfig
from settings import SecurityConfig as SecurityConfig
from settings import StorageConfig as StorageConfig
from settings import VideoRung as VideoRung

# --- building dataclasses from plain data ---------------------------------------------------

def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Turn a TOML/JSON value into the annotated type, or raise ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table")
        return _build(key, tp, value)
    if origin is dict:
        (key_tp, value_tp) = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table")
        return {_coerce(key, key_tp, k): _coerce(f"{key}.{k}", value_tp, v)
                for k, v in value.items()}
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list")
        return tuple(_coerce(f"{key}[{i}]", item_tp, v) for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"{key}: unsupported type")  # not used by any setting
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false (got {value!r})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer (got {value!r})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number (got {value!r})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string (got {value!r})")
        return value
    raise ConfigError(f"{key}: unsupported type {tp!r}")


def _build(prefix: str, cls: Any, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            raise ConfigError(f"{prefix}.{k}: unknown key" if prefix else f"{k}: unknown section")
    kwargs = {k: _coerce(f"{prefix}.{k}" if prefix else k, hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def _env_value(key: str, tp: Any, raw: str) -> Any:
    """Parse an environment override: JSON for lists/tables/numbers/bools, else the raw string."""
    if tp is str:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"{key}: {raw!r} is not a valid value") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Sections merge key by key; a value (a table-valued setting too) replaces the file's."""
    out = dict(base)
    for k, v in over.items():
        section = isinstance(v, dict) and isinstance(out.get(k), dict)
        out[k] = {**out[k], **v} if section else v
    return out


# Variables that are not settings: the file to read, and the client commands' key.
CLIENT_VARIABLES = ("SORI_CONFIG", "SORI_API_KEY")


def load(path: str | os.PathLike[str] | None = None,
         env: typing.Mapping[str, str] | None = None) -> Config:
    """Load, merge and validate the configuration. Raises ConfigError."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    chosen = path or env.get("SORI_CONFIG")
    if chosen:
        p = Path(chosen)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(p)!r} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {str(p)!r}: {e}") from None
        except OSError as e:
            raise ConfigError(f"config file {str(p)!r}: {e.strerror}") from None
    section_types = typing.get_type_hints(Config)
    overrides: dict[str, Any] = {}
    for name, raw in env.items():
        if (not name.startswith("SORI_") or name in CLIENT_VARIABLES
                or name.startswith("SORI_TEST_")):
            continue
        rest = name[len("SORI_"):].lower()
        section, _, key = rest.partition("_")
        if section not in section_types or not key:
            raise ConfigError(f"{name}: unknown setting")
        fields = typing.get_type_hints(section_types[section])
        if key not in fields:
            raise ConfigError(f"{name}: unknown setting {section}.{key}")
        overrides.setdefault(section, {})[key] = _env_value(name, fields[key], raw)
    merged = _merge(data, overrides)
    for section, value in merged.items():
        if section in section_types and not isinstance(value, dict):
            raise ConfigError(f"{section}: expected a table")
    cfg: Config = _build("", Config, merged)
    return cfg.validate()
