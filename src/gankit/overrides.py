"""``key=value`` overrides in every form gankit takes (command-line items, one string, a dict)
turned into one nested dict, and the merge of such dicts: the part of the config language that
needs no dataclass. ``config`` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from .errors import UserError
from .yamlfile import DuplicateKeyError, _yaml_load


def _merge(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _put(out: dict[str, Any], parts: list[str], value: Any, item: str) -> None:
    """Set ``out[parts[0]]...[parts[-1]] = value``, merging a mapping into one already there."""
    node = out
    for i, p in enumerate(parts[:-1]):
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise UserError(
                f"override {item!r} conflicts with another override of {'.'.join(parts[: i + 1])}"
            )
    last = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        node[last] = _merge(node[last], value)
    else:
        node[last] = value


def _split_key(key: str, item: str) -> list[str]:
    parts = key.split(".")
    if "" in parts:
        raise UserError(f"override {item!r} has an empty part in its key; write e.g. train.steps")
    return parts


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.steps=100", "seed=3"]`` -> nested dict; values parsed as YAML scalars.

    A later override of the same key wins (as on a command line); a mapping value such as
    ``train={steps: 5}`` merges with earlier ``train.*`` overrides instead of replacing them.
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like key=value, e.g. train.steps=500")
        key, raw = item.split("=", 1)
        if not key:
            raise UserError(f"override {item!r} has no key; write key=value, e.g. seed=1")
        parts = _split_key(key, item)
        try:
            value = _yaml_load(raw) if raw != "" else ""
        except DuplicateKeyError as e:
            raise UserError(
                f"override {item!r} gives the key {key}.{e.key} twice; keep one of them"
            ) from None
        except (yaml.YAMLError, ValueError, RecursionError):
            value = raw
        _put(out, parts, value, item)
    return out


def _dict_overrides(values: Mapping[Any, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise UserError(
                f"override keys must be non-empty strings such as 'train.steps', got {key!r}"
            )
        dotted = prefix + key
        parts = _split_key(dotted, dotted)
        if isinstance(value, Mapping):
            if value:
                _dict_overrides(value, dotted + ".", out)
            else:  # an empty mapping sets nothing, but a non-mapping key still refuses it
                _put(out, parts, {}, dotted)
            continue
        node: Any = out
        for p in parts[:-1]:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            raise UserError(f"overrides give {dotted} twice; keep one of them")
        _put(out, parts, value, dotted)


def normalize_overrides(overrides: Any) -> dict[str, Any]:
    """Overrides in any accepted form -> one nested dict, ready to merge into a config.

    - ``None``: no overrides.
    - a list or tuple of ``key=value`` strings, as on the command line (values parsed as YAML
      scalars; a later override of the same key wins).
    - one string: one or more ``key=value`` items separated by whitespace (``"train.steps=10
      seed=1"``); a value that holds a space needs the list form.
    - a dict with nested or dotted keys (``{"train": {"steps": 10}}``, ``{"train.steps": 10}``,
      or both); its values are Python values (not parsed as YAML), and a key given twice (e.g.
      ``train.steps`` both nested and dotted) is an error.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        return parse_overrides(overrides.split())
    if isinstance(overrides, (list, tuple)):
        for item in overrides:
            if not isinstance(item, str):
                raise UserError(
                    f"overrides must be key=value strings, got {item!r} "
                    f"({type(item).__name__}) in the {type(overrides).__name__}"
                )
        return parse_overrides(list(overrides))
    if isinstance(overrides, Mapping):
        out: dict[str, Any] = {}
        _dict_overrides(overrides, "", out)
        return out
    raise UserError(
        "overrides must be a list of key=value strings, one such string or a dict, "
        f"got {type(overrides).__name__}"
    )
