"""YAML configs validated by pydantic models, with one-line errors naming file, line and key.

The layer under the search config (:mod:`.config`) and the funnel's. A config is a tree of
:class:`Model`: frozen, unknown keys forbidden, strict types, a ``null`` section meaning its
defaults. :func:`read_yaml` composes a file so that every key keeps its line; duplicate keys
are errors naming both lines; anchors and aliases are refused while composing (an "alias
bomb" fails at once), as is a file of more than ``MAX_NODES`` nodes or nested more than
``MAX_DEPTH`` deep (composing recurses: 10,000 ``[`` would exhaust the stack). A file is
read only if it is a regular file (``optevo.dsl.files.read_text``: a FIFO would block).
:func:`validate` turns the FIRST pydantic error (unknown keys first) into a
:class:`ConfigError`::

    configs/x.yaml:12: search.tournament: expected an integer >= 1, got 'ten'
    configs/x.yaml:7: unknown key 'search.tournamnet'; allowed: population, ... (did you mean tournament?)

Typing: an int key takes only YAML integers (not ``2.0``, ``true``, ``'2'``); a float key
integers and floats, never NaN or infinities; a bool key only ``true``/``false``; a string
key a non-empty string; ``null`` only where the annotation is ``Optional``. The "expected"
texts come from the field: annotation, ``Optional``, ``Field(ge=, gt=)``, and
``json_schema_extra={"expected": ..., "type": ...}`` (message, README type), as
:mod:`.yaml_schema` reads the annotations (there too: the README's table of keys). Validators
raise :func:`fail` with their final text. Overrides (:func:`apply_overrides`) are dotted keys
located at a label (``--max-evals``); a string for a non-string key is read as a YAML scalar
(for a string key, ``null``/``~`` mean null where allowed); a mapping merges into a mapping;
a key below a list of mappings (``task.seeds`` on a suite) is set in each of them.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Tuple

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from optevo.dsl.errors import OptevoError
from optevo.dsl.files import read_text

from .yaml_schema import (MANY, ONE, branches, describe, field_below, schema_rows, show,
                          unwrap)
from .yaml_schema import Row, describe_schema, one_or_many  # noqa: F401 (re-exported)

MAX_NODES = 100_000
MAX_DEPTH = 64  # configs nest 4 deep; composing recurses once per level


class Loc(NamedTuple):
    """Where a value came from: a file and line, an override label, or a dict's source."""

    source: str
    line: Optional[int] = None

    def __str__(self) -> str:
        return self.source if self.line is None else f"{self.source}:{self.line}"


class ConfigError(OptevoError, ValueError):
    """Invalid config: ``str(e)`` is one line ``WHERE: KEY: PROBLEM`` (``e.where``, ``e.key``)."""

    def __init__(self, where: Loc, message: str, key: Optional[str] = None):
        self.where, self.source, self.line, self.key = where, where.source, where.line, key
        self.problem = message
        super().__init__(" ".join(f"{where}: {f'{key}: ' if key else ''}{message}".split()))


class Model(BaseModel):
    """A config section (see the module doc); assigning to a field raises AttributeError."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only (use model_copy)")

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:  # ``workers:`` with nothing: the defaults
        return {} if data is None else data


def suggest(word: Any, allowed) -> str:
    close = difflib.get_close_matches(str(word), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def fail(message: str, *at: Any, keyed: bool = True) -> PydanticCustomError:
    """A validator's error with its final text. ``at``: keys (dotted or tuples) under the
    validated value; the first is named, the first in the input gives the line. ``keyed=False``:
    the text names the key itself (an unknown key: reported first, as pydantic's)."""
    return PydanticCustomError("config", "{text}", {"text": message, "at": at, "keyed": keyed})


def dotted(path: Tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


class _Loader(yaml.SafeLoader):
    depth = 0  # collections open around the node being composed

    def compose_node(self, parent, index):  # refuses anchors and aliases before any use
        event, self.count = self.peek_event(), getattr(self, "count", 0) + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            problem = "YAML anchors and aliases (&name, *name) are not supported"
        elif self.count > MAX_NODES:
            problem = f"too large: more than {MAX_NODES} YAML nodes"
        elif self.depth >= MAX_DEPTH:
            problem = f"nested too deeply: more than {MAX_DEPTH} levels of lists and mappings"
        else:
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1
        raise ConfigError(Loc(self.name, event.start_mark.line + 1), problem)


def parse_yaml(text: str, src: str) -> Tuple[Any, Dict[Tuple, Loc]]:
    """YAML text as plain data (``{}`` if empty), and the Loc of every key path."""
    locs = {}
    try:
        loader = _Loader(text)
    except yaml.YAMLError as e:  # e.g. a control character the reader refuses
        raise ConfigError(Loc(src), f"YAML error: {str(e).splitlines()[0]}") from None
    loader.name = src

    def data(node, path: Tuple, line: int) -> Any:
        locs[path] = Loc(src, line)
        if isinstance(node, yaml.SequenceNode):
            return [data(v, path + (i,), v.start_mark.line + 1) for i, v in enumerate(node.value)]
        if not isinstance(node, yaml.MappingNode):
            try:
                return loader.construct_object(node)
            except ValueError as e:  # e.g. an integer of more than 4300 digits
                raise ConfigError(Loc(src, line), f"unreadable value "
                                  f"{str(node.value)[:20]!r}... ({e})") from None
        out: Dict[str, Any] = {}
        for k, v in node.value:
            where = Loc(src, k.start_mark.line + 1)
            if not isinstance(k, yaml.ScalarNode):
                raise ConfigError(where, "keys must be plain names", key=dotted(path) or None)
            if k.value in out:
                raise ConfigError(where, f"duplicate key '{dotted(path + (k.value,))}' (first "
                                  f"at line {locs[path + (k.value,)].line})")
            out[k.value] = data(v, path + (k.value,), where.line)
        return out

    try:
        node = loader.get_single_node()
        return ({} if node is None else data(node, (), node.start_mark.line + 1)), locs
    except yaml.MarkedYAMLError as e:
        mark, problem = e.problem_mark or e.context_mark, e.problem or e.context
        problem += f" ({e.context})" if e.problem and e.context else ""
        raise ConfigError(Loc(src, mark and mark.line + 1), f"YAML syntax error: {problem}") \
            from None
    except yaml.YAMLError as e:
        raise ConfigError(Loc(src), f"YAML error: {e}") from None
    finally:
        loader.dispose()


def preset_names():
    """The packaged presets (``optevo.configs``: quick, search, funnel, ...)."""
    from importlib import resources
    root = resources.files("optevo.configs")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def find_config(name) -> Path:
    """A config file: the path if it exists, else the packaged preset ``name`` (``quick``,
    ``search``, ``quick.yaml``), so presets work from any directory; else a one-line
    error listing the presets."""
    path = Path(name)
    if path.exists():
        return path
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    bare = path.parent in (Path("."), Path("configs"))
    if bare and stem in preset_names():
        from importlib import resources
        return Path(str(resources.files("optevo.configs") / f"{stem}.yaml"))
    raise ConfigError(Loc(str(name)), "no such file" + (
        f", and not a packaged preset ({', '.join(preset_names())})" if bare else ""))


def read_yaml(path) -> Tuple[Any, Dict[Tuple, Loc]]:
    """:func:`parse_yaml` of a file; an unreadable file is a one-line error too."""
    try:
        text = read_text(path)  # a regular file only (a FIFO would block); a BOM is allowed
    except (OSError, UnicodeDecodeError) as e:
        why = {FileNotFoundError: "no such file", UnicodeDecodeError: "not a UTF-8 text file",
               IsADirectoryError: "is a directory, not a config file"}.get(type(e))
        raise ConfigError(Loc(str(path)), why or f"cannot read: {e.strerror or e}") from None
    return parse_yaml(text, str(path))


def apply_overrides(model, data: dict, locs: Dict[Tuple, Loc], overrides, sources) -> None:
    """Set each dotted key of ``overrides`` in ``data`` and its Loc (a label from ``sources``,
    default ``override``) in ``locs``; unknown keys are left to :func:`validate`. Through a
    :func:`one_or_many` key that holds a list (``task.seeds`` on a suite) the key is set in
    every element; a mapping merged into such a list is refused (which element?). A key
    through a value that is not a mapping leaves it as it is, for :func:`validate` to
    report."""
    def merge(old, new):
        if isinstance(old, dict) and isinstance(new, dict):
            return {**old, **{k: merge(old.get(k), v) for k, v in new.items()}}
        return new

    def mark(path, value):
        locs[path] = where
        for k, v in value.items() if isinstance(value, dict) else ():
            mark(path + (str(k),), v)

    def place(node: dict, i: int, path: Tuple) -> None:
        part, child = parts[i], node.get(parts[i])
        if isinstance(child, list) and i in many and (i < len(parts) - 1
                                                      or isinstance(value, dict)):
            if i == len(parts) - 1:
                raise ConfigError(where, f"'{key}' is a list here (one entry each); set "
                                  f"{key}.KEY to change every entry, or give the whole list")
            for j, element in enumerate(child):
                if isinstance(element, dict):
                    place(element, i + 1, path + (part, j))
        elif i == len(parts) - 1:
            node[part] = merge(child, value)
            mark(path + (part,), value)
        elif child is None or isinstance(child, dict):
            node[part] = {} if child is None else child
            place(node[part], i + 1, path + (part,))

    for key, value in (overrides or {}).items():
        where, parts = Loc((sources or {}).get(key, "override")), str(key).split(".")
        ann, many = model, set()  # many: the parts that are one_or_many keys
        for i, part in enumerate(parts):
            below = ann and field_below(ann, part)
            if ann is not None and below is None and not hasattr(ann, "model_fields"):
                raise ConfigError(where, f"unknown key '{key}'; '{'.'.join(parts[:i])}' is "
                                  "not a mapping")
            ann = below and below[0]
            if ann is not None and branches(unwrap(ann)[0]):
                many.add(i)
        kind, _, nullable = unwrap(ann)
        if isinstance(value, str) and kind is str:
            value = None if nullable and value.strip() in ("null", "~") else value
        elif isinstance(value, str):  # read as a YAML scalar
            try:
                parsed = parse_yaml(value, where.source)[0]
                whole = (typing.get_origin(kind) or kind) in (list, tuple) and \
                    isinstance(parsed, list)  # a list key takes a flow list: [a, b]
                value = value if isinstance(parsed, (dict, list)) and not whole else parsed
            except ConfigError:
                pass
        place(data, 0, ())


def _error(model, err: dict, locs: Dict[Tuple, Loc], where: Loc) -> ConfigError:
    """One pydantic error as a ConfigError at the line of its key (or of the closest above)."""
    loc = tuple(p for p in err["loc"] if p not in (ONE, MANY))
    ctx, key = err.get("ctx") or {}, None
    field, ann, n = None, model, 0  # the deepest key of loc that the schema knows
    while n < len(loc) and field_below(ann, loc[n]):
        (ann, field), n = field_below(ann, loc[n]), n + 1
    if err["type"] == "extra_forbidden":
        container = unwrap(ann)[0]
        container = (branches(container) or (container,))[0]  # one_or_many: the mapping form
        path, allowed = loc, list(container.model_fields)
        hint = suggest(loc[-1], allowed)
        if not hint and len(loc) == 1:  # a section key written at the top level?
            homes = [k for k, _ in schema_rows(model) if k.endswith(f".{loc[-1]}")]
            hint = f" (did you mean {' or '.join(homes)}?)" if homes else ""
        text = f"unknown key '{dotted(loc)}'; allowed: {', '.join(allowed)}{hint}"
    elif err["type"] == "config":  # from fail()
        paths = [loc + (tuple(a.split(".")) if isinstance(a, str) else a) for a in ctx["at"]]
        path = next((p for p in paths if p in locs), (paths or [loc])[0])
        text, key = err["msg"], ctx["keyed"] and dotted((paths or [loc])[0])
    else:
        path, value = loc[:n], err.get("input")
        if unwrap(ann)[0] is float and type(value) is int:
            value = float(value)  # as it would be stored: "got 0.0"
        expected = describe(ann, field.metadata if field else (),
                            field and field.json_schema_extra, key=dotted(path))
        text = (f"missing; expected {expected}" if err["type"] == "missing"
                else f"expected {expected}, got {show(value)}")
        key = dotted(path)
    while path not in locs and path:
        path = path[:-1]
    return ConfigError(locs.get(path, where), text, key=key or None)


def validate(model, data: Any, locs: Dict[Tuple, Loc], where: Loc):
    """``model`` from ``data``, or the first error (unknown keys first) as a ConfigError at
    its key's Loc in ``locs`` (key path -> Loc), else at ``where``."""
    if not isinstance(data, dict):
        raise ConfigError(locs.get((), where), "the top level must be a mapping of keys "
                          f"({', '.join(model.model_fields)}), got {show(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        first = next((x for x in errors if x["type"] == "extra_forbidden"
                      or (x.get("ctx") or {}).get("keyed") is False), errors[0])
        raise _error(model, first, locs, where) from None
