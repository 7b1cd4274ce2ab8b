"""Reading tenant configs from JSON text and base64url strings, with clear problems (no file I/O)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .tenant import TenantConfig

ENV_KEY = "$env"
MAX_DEPTH = 32  # real configs nest 4 or 5 levels; deeper input would exhaust the stack


def resolve_env(data: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace every ``{"$env": "NAME"}`` with the environment variable's value."""
    if isinstance(data, dict):
        if set(data) == {ENV_KEY}:
            name = data[ENV_KEY]
            if not isinstance(name, str) or name not in env:
                raise ConfigError(
                    "missing environment variable",
                    [(path or "(root)", f"environment variable {name!r} is not set")],
                )
            return env[name]
        return {k: resolve_env(v, env, f"{path}.{k}" if path else k) for k, v in data.items()}
    if isinstance(data, list):
        return [resolve_env(v, env, f"{path}[{i}]") for i, v in enumerate(data)]
    return data


def check_depth(data: Any) -> None:
    """Refuse JSON nested deeper than ``MAX_DEPTH`` (checked without recursion)."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ConfigError(
                    "config is nested too deeply", [("(root)", f"more than {MAX_DEPTH} levels of nesting")]
                )
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)


def check_finite(data: Any) -> None:
    """Refuse ``NaN``, ``Infinity``, ``-Infinity`` and overflowing literals such as ``1e999``.

    They are not JSON (RFC 8259 section 6) but Python's ``json`` reads them; they would then
    overflow ``math.ceil``, timers and TTLs. Every such number is named by its field."""
    problems: list[tuple[str, str]] = []
    pending: list[tuple[Any, str]] = [(data, "")]
    while pending:
        value, path = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(
                (path or "(root)", f"{value!r} is not a finite number (JSON has no NaN or Infinity)")
            )
        elif isinstance(value, dict):
            pending.extend((v, f"{path}.{k}" if path else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
    if problems:
        raise ConfigError("config has numbers that are not finite", sorted(problems))


def loads(text: str | bytes) -> Any:
    """``json.loads`` for configs: depth and finiteness checked (see :func:`check_finite`)."""
    data = json.loads(text)
    check_depth(data)
    check_finite(data)
    return data


def contains_env(data: Any) -> bool:
    if isinstance(data, dict):
        return ENV_KEY in data or any(contains_env(v) for v in data.values())
    if isinstance(data, list):
        return any(contains_env(v) for v in data)
    return False


def parse_config(data: Any, env: Mapping[str, str] | None = None) -> TenantConfig:
    """Validate a decoded JSON config. Raises ConfigError listing (field, problem) pairs."""
    if not isinstance(data, dict):
        raise ConfigError("config must be a JSON object", [("(root)", "must be a JSON object")])
    check_depth(data)
    check_finite(data)
    resolved = resolve_env(data, os.environ if env is None else env)
    try:
        return TenantConfig.model_validate(resolved)
    except ValidationError as exc:
        problems = [(_field(err), err["msg"]) for err in exc.errors()]
        raise ConfigError("invalid tenant config", problems) from None


def _field(error: Any) -> str:
    """Where a validation error is: a model validator names its field in ``ctx["field"]``."""
    named = (error.get("ctx") or {}).get("field")
    return str(named) if named else _location(error["loc"])


def parse_text(text: str, env: Mapping[str, str] | None = None) -> TenantConfig:
    """Validate a config file's JSON text; the file is read by the caller (``tenants.registry``)."""
    try:
        data = loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("invalid JSON", [(f"line {exc.lineno} column {exc.colno}", exc.msg)]) from None
    except RecursionError:
        raise ConfigError("config is nested too deeply", [("(file)", "too deeply nested to read")]) from None
    except ValueError as exc:  # e.g. an integer literal beyond int()'s 4300-digit limit
        raise ConfigError("invalid JSON", [("(file)", str(exc))]) from None
    return parse_config(data, env)


def decode_dynamic(encoded: str) -> Any:
    """Decode ``base64url(JSON)`` as carried in ``/dyn/{encoded}/...`` (padding optional)."""
    if len(encoded) > 32_768:
        raise ConfigError("dynamic config too large", [("(url)", "more than 32 KiB")])
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise ConfigError(
            "dynamic config is not base64url-encoded JSON", [("(url)", "expected base64url(JSON)")]
        ) from None
    check_depth(data)
    check_finite(data)
    return data


def encode_dynamic(config: Mapping[str, Any]) -> str:
    raw = json.dumps(config, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unknown_keys(data: Any, model: Any = None, path: str = "") -> list[str]:
    """Keys a config carries that no model field reads (comments ``//...`` excluded)."""
    model = model or TenantConfig
    found: list[str] = []
    if not isinstance(data, dict) or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return found
    if model.model_config.get("extra") == "forbid":  # e.g. policy: unknown keys are errors there
        return found
    for key, value in data.items():
        if str(key).startswith("//") or value is None:
            continue
        field = model.model_fields.get(key)
        where = f"{path}.{key}" if path else key
        if field is None:
            found.append(where)
            continue
        for candidate in _models_of(field.annotation, value):
            found += unknown_keys(value, candidate, where)
    return found


def _models_of(annotation: Any, value: Any) -> list[Any]:
    out = []
    for arg in (annotation, *get_args(annotation), *[a for x in get_args(annotation) for a in get_args(x)]):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            type_field = arg.model_fields.get("type")
            if (
                type_field is None
                or not isinstance(value, dict)
                or value.get("type") in get_args(type_field.annotation)
            ):
                out.append(arg)
    return out[:1]


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif str(item) in {
            "mock",
            "smart-on-fhir",
            "dicom-web",
            "dicom-dimse",
            "folder",
            "http-basic",
            "open",
            "bearer",
        } or str(item).startswith("smart-on-fhir"):
            continue  # discriminator tags pydantic inserts
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(root)"
