"""Reading YAML config files strictly: UTF-8 text only, and no key given twice in a mapping
(PyYAML's safe loader silently keeps the last one). Part of the config layer; imports nothing of
gankit but its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import UserError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives one key twice; ``key`` is its dotted path, lines are 1-based."""

    def __init__(self, key: str, first_line: int, line: int, mark: yaml.Mark | None):
        super().__init__(problem=f"duplicate key {key} (first given on line {first_line})")
        self.problem_mark = mark
        self.key, self.first_line, self.line = key, first_line, line


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings refuse a duplicate key (at any depth).

    A key repeated through a merge (``<<: *base`` then the key itself) is an override, not a
    duplicate, so each mapping is checked as written, before merge keys are expanded.
    """

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._checked: set[int] = set()
        self._paths: dict[int, str] = {}  # id(mapping node) -> dotted prefix of its keys

    def construct_document(self, node: yaml.Node) -> Any:
        stack = [(node, "")]
        while stack:  # name every mapping by its path, for the error message
            n, prefix = stack.pop()
            if id(n) in self._paths:
                continue
            self._paths[id(n)] = prefix
            if isinstance(n, yaml.MappingNode):
                for k, v in reversed(n.value):
                    named = isinstance(k, yaml.ScalarNode) and k.tag != _MERGE_TAG
                    stack.append((v, f"{prefix}{k.value}." if named else prefix))
            elif isinstance(n, yaml.SequenceNode):
                stack.extend((item, prefix) for item in reversed(n.value))
        return super().construct_document(node)

    def _refuse_duplicates(self, node: yaml.Node) -> None:
        if not isinstance(node, yaml.MappingNode) or id(node) in self._checked:
            return
        self._checked.add(id(node))
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: SafeLoader refuses it itself
                continue
            if first is not key_node:
                typed = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key)
                raise DuplicateKeyError(
                    self._paths.get(id(node), "") + typed,
                    first.start_mark.line + 1,
                    key_node.start_mark.line + 1,
                    key_node.start_mark,
                )

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        self._refuse_duplicates(node)  # a merge source is flattened before it is constructed
        super().flatten_mapping(node)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        self._refuse_duplicates(node)
        return super().construct_mapping(node, deep=deep)


def _yaml_load(text: str) -> Any:
    """``yaml.safe_load`` with ``StrictLoader``: the one way config.py reads YAML."""
    loader = StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise UserError(_folder_message(str(path))) from None
    except OSError as e:
        raise UserError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
            f"{e.start}); save it as UTF-8 YAML"
        ) from None
    try:
        values = _yaml_load(text)
    except DuplicateKeyError as e:
        lines = f"lines {e.first_line} and {e.line}" if e.line != e.first_line else f"line {e.line}"
        raise UserError(
            f"config file {path} gives the key {e.key} twice ({lines}); keep one of them"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(
            f"config file {path} is not valid YAML ({e.__class__.__name__}{where})"
        ) from None
    except (ValueError, RecursionError) as e:  # e.g. an int too long to convert, deep nesting
        raise UserError(f"config file {path} is not valid YAML ({e.__class__.__name__})") from None
    if values is None:  # an empty file
        values = {}
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    return values


def _folder_message(src: str) -> str:
    inner = Path(src) / "config.yaml"
    hint = f"pass {inner} to reuse that run's config" if inner.is_file() else "pass a YAML file"
    return f"{src} is a folder, not a config file; {hint} or a preset name"


# ---------------------------------------------------------------------------------------------
# overrides
