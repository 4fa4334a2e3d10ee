"""Declarative config schemas read from YAML: rows, one-line errors, validation.

The generic machinery behind :mod:`optevo.search.config` (which holds the concrete schema):
a schema is a tree of frozen dataclasses whose fields are :func:`key` rows (type, default,
bounds or choices, one-line doc) or :func:`section` subtrees. YAML is composed into nodes so
that every value keeps the line of its key, and every problem becomes one
:class:`ConfigError` line: ``file:line: dotted.key: problem``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, \
    Union

import yaml

from optevo.dsl.errors import OptevoError

# --------------------------------------------------------------------------------------------
# errors and locations


class Loc(NamedTuple):
    """Where a value came from: a file and line, an override label, or a dict's source."""

    source: str
    line: Optional[int] = None

    def __str__(self) -> str:
        return self.source if self.line is None else f"{self.source}:{self.line}"


class ConfigError(OptevoError, ValueError):
    """Invalid config: ``str(e)`` is one line ``WHERE: KEY: PROBLEM`` (``e.where``, ``e.key``)."""

    def __init__(self, where: Loc, message: str, key: Optional[str] = None):
        self.where = where
        self.source = where.source
        self.line = where.line
        self.key = key
        self.problem = message
        text = f"{where}: {key}: {message}" if key else f"{where}: {message}"
        super().__init__(" ".join(text.split()))  # one line, whatever went into it


def _show(value: Any) -> str:
    """A value as it would read in YAML, on one short line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (_Map, dict)):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, allowed) -> str:
    close = difflib.get_close_matches(str(word), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


# --------------------------------------------------------------------------------------------
# the schema: one ``key(...)`` row per config key


@dataclass(frozen=True)
class Spec:
    """One config key.

    kind: ``int``, ``float``, ``bool``, ``str``, ``options`` (a mapping of scalars) or
    ``weights`` (a mapping from the names in ``choices`` to numbers >= 0, at least one > 0,
    missing names keeping their default weight).
    min / min_open: lower bound, inclusive unless ``min_open``.
    choices: for ``str``, the allowed values (a tuple, or a function returning them, called
    only when validating); for ``weights``, the allowed names.
    check: extra validation, ``check(value) -> problem string or None``.
    pattern: a regular expression a ``str`` must match in full (described by ``pattern_doc``).
    """

    kind: str
    default: Any
    doc: str
    min: Optional[float] = None
    min_open: bool = False
    nullable: bool = False
    choices: Union[Tuple[str, ...], Callable[[], Any], None] = None
    check: Optional[Callable[[Any], Optional[str]]] = None
    pattern: Optional[str] = None
    pattern_doc: str = ""
    type_doc: str = ""

    def expected(self) -> str:
        """What a valid value looks like, for messages: ``an integer >= 2 or null``."""
        if self.kind == "weights":
            text = f"a mapping from {', '.join(self.choices)} to numbers >= 0"
        elif self.kind == "options":
            text = "a mapping from option names to numbers, strings or booleans"
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "str":
            text = f"a {self.pattern_doc or 'non-empty string'}"
        else:
            text = "an integer" if self.kind == "int" else "a number"
            if self.min is not None:
                text += f" {'>' if self.min_open else '>='} {_num(self.min)}"
        return text + (" or null" if self.nullable else "")

    def type_text(self) -> str:
        """Short type for the README table: ``int >= 2 or null``."""
        if self.type_doc:
            return self.type_doc
        text = self.kind
        if self.min is not None:
            text += f" {'>' if self.min_open else '>='} {_num(self.min)}"
        return text + (" or null" if self.nullable else "")


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def key(kind: str, default: Any, doc: str, **kw):
    """A schema row: a dataclass field carrying its :class:`Spec`."""
    spec = Spec(kind, default, doc, **kw)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"spec": spec})
    return field(default=default, metadata={"spec": spec})


def section(cls, doc: str):
    """A nested section (a dataclass of rows)."""
    return field(default_factory=cls, metadata={"section": cls, "doc": doc})


def schema_rows(cls, prefix: str = "") -> Iterator[Tuple[str, Spec]]:
    """(dotted key, Spec) for every key, in schema order."""
    for f in dataclasses.fields(cls):
        if "section" in f.metadata:
            yield from schema_rows(f.metadata["section"], prefix + f.name + ".")
        else:
            yield prefix + f.name, f.metadata["spec"]


def _default_text(spec: Spec) -> str:
    if spec.kind == "weights":
        vals = set(spec.default.values())
        if len(vals) == 1:
            return f"{_show(vals.pop())} each"
    return yaml.safe_dump(spec.default, default_flow_style=True).strip().removesuffix(
        "\n...").removesuffix("...").strip()


def describe_schema(cls) -> str:
    """The schema of dataclass ``cls`` as a markdown table: key, type, default, meaning."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for dotted, spec in schema_rows(cls):
        doc = spec.doc
        if spec.kind == "weights":
            doc += f"; names: {', '.join(spec.choices)}"
        lines.append(f"| `{dotted}` | {spec.type_text()} | `{_default_text(spec)}` | "
                     f"{doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# raw input: nested mappings whose entries remember where they came from


class _Item(NamedTuple):
    value: Any  # a scalar, a list, or a _Map
    loc: Loc


class _Map:
    def __init__(self, items: Optional[Dict[str, _Item]] = None):
        self.items: Dict[str, _Item] = items if items is not None else {}


def _from_node(node, constructor, source: str, path: str, key_line: int) -> _Item:
    """A composed YAML node as an _Item tree; each entry's loc is its key's line."""
    if isinstance(node, yaml.MappingNode):
        m = _Map()
        for k_node, v_node in node.value:
            line = k_node.start_mark.line + 1
            if not isinstance(k_node, yaml.ScalarNode):
                raise ConfigError(Loc(source, line), "keys must be plain names",
                                  key=path or None)
            name = k_node.value
            dotted = f"{path}.{name}" if path else name
            if name in m.items:
                raise ConfigError(Loc(source, line), f"duplicate key '{dotted}' (first at line "
                                  f"{m.items[name].loc.line})")
            m.items[name] = _from_node(v_node, constructor, source, dotted, line)
        return _Item(m, Loc(source, key_line))
    return _Item(constructor.construct_object(node, deep=True), Loc(source, key_line))


def _from_value(value: Any, loc: Loc) -> _Item:
    if isinstance(value, Mapping):
        return _Item(_Map({str(k): _from_value(v, loc) for k, v in value.items()}), loc)
    return _Item(value, loc)


def _merge(old: Optional[_Item], new: _Item) -> _Item:
    """``new`` over ``old``; mappings merge key by key."""
    if old is not None and isinstance(old.value, _Map) and isinstance(new.value, _Map):
        items = dict(old.value.items)
        for k, v in new.value.items.items():
            items[k] = _merge(items.get(k), v)
        return _Item(_Map(items), new.loc)
    return new


def _unknown(loc: Loc, dotted: str, name: str, allowed: List[str], cls=None,
             top: bool = False) -> ConfigError:
    hint = _suggest(name, allowed)
    if not hint and top:  # a section key written at the top level?
        homes = [d for d, _ in schema_rows(cls) if d.endswith("." + name)]
        if homes:
            hint = f" (did you mean {' or '.join(homes)}?)"
    return ConfigError(loc, f"unknown key '{dotted}'; allowed: {', '.join(allowed)}{hint}")


def _parse_override(spec: Optional[Spec], value: Any) -> Any:
    """A string override for a non-string key is read as a YAML scalar."""
    if not isinstance(value, str):
        return value
    if spec is not None and spec.kind == "str":
        return None if spec.nullable and value.strip() in ("null", "~") else value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return value if isinstance(parsed, (dict, list)) else parsed


def _apply_override(root: _Map, dotted: str, value: Any, loc: Loc, schema) -> None:
    """Set ``dotted`` in the parsed mapping ``root`` of dataclass ``schema``."""
    parts = dotted.split(".")
    cls, m = schema, root
    for i, part in enumerate(parts):
        here = ".".join(parts[:i + 1])
        last = i == len(parts) - 1
        if cls is None:  # inside a mapping-valued key: options / mutations
            if not last:
                raise ConfigError(loc, f"unknown key '{dotted}'; "
                                  f"'{'.'.join(parts[:i])}' entries are not mappings")
            m.items[part] = _from_value(_parse_override(None, value), loc)
            return
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            raise _unknown(loc, here, part, list(fields), cls, top=i == 0)
        f = fields[part]
        if last:
            spec = f.metadata.get("spec")
            m.items[part] = _merge(m.items.get(part),
                                   _from_value(_parse_override(spec, value), loc))
            return
        old = m.items.get(part)
        if old is None or not isinstance(old.value, _Map):
            spec = f.metadata.get("spec")
            if spec is not None and spec.kind not in ("options", "weights"):
                raise ConfigError(loc, f"unknown key '{dotted}'; '{here}' is not a mapping")
            old = _Item(_Map(), loc)
            m.items[part] = old
        m = old.value
        cls = f.metadata.get("section")  # None for options / weights


# --------------------------------------------------------------------------------------------
# validation


def _check_scalar(spec: Spec, value: Any, where: Loc, dotted: str) -> Any:
    def bad(extra: str = ""):
        return ConfigError(where, f"expected {spec.expected()}, got {_show(value)}{extra}",
                           key=dotted)

    if value is None:
        if spec.nullable:
            return None
        raise bad()
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
    elif spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        value = float(value)
        if not math.isfinite(value):
            raise bad()
    elif spec.kind == "bool":
        if not isinstance(value, bool):
            raise bad()
    elif spec.kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise bad()
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            raise bad()
        if spec.choices is not None:
            allowed = list(spec.choices() if callable(spec.choices) else spec.choices)
            if value not in allowed:
                raise ConfigError(where, f"expected one of {', '.join(allowed)}; got "
                                  f"{_show(value)}{_suggest(value, allowed)}", key=dotted)
    if spec.min is not None and spec.kind in ("int", "float"):
        if value < spec.min or (spec.min_open and value == spec.min):
            raise bad()
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise ConfigError(where, problem, key=dotted)
    return value


def _check_mapping(spec: Spec, item: _Item, dotted: str, locs: Dict[str, Loc]) -> Dict:
    value = item.value
    if value is None and spec.kind == "options":
        return {}
    if not isinstance(value, _Map):
        raise ConfigError(item.loc, f"expected {spec.expected()}, got {_show(value)}",
                          key=dotted)
    out: Dict[str, Any] = {}
    if spec.kind == "weights":
        allowed = list(spec.choices)
        out = dict(spec.default)
        for name, entry in value.items.items():
            sub = f"{dotted}.{name}"
            if name not in allowed:
                raise _unknown(entry.loc, sub, name, allowed)
            out[name] = _check_scalar(Spec("float", None, "", min=0), entry.value, entry.loc,
                                      sub)
            locs[sub] = entry.loc
        if not any(w > 0 for w in out.values()):
            raise ConfigError(item.loc, "at least one weight must be > 0, got all zero",
                              key=dotted)
        return out
    for name, entry in value.items.items():  # options
        sub = f"{dotted}.{name}"
        if not name.isidentifier():
            raise ConfigError(entry.loc, f"option names must be identifiers, got {name!r}",
                              key=sub)
        v = entry.value
        if v is None or not isinstance(v, (bool, int, float, str)):
            raise ConfigError(entry.loc, f"expected a number, string or boolean, got {_show(v)}",
                              key=sub)
        out[name] = v
        locs[sub] = entry.loc
    return out


def _build(cls, m: Optional[_Map], prefix: str, where: Loc, locs: Dict[str, Loc]):
    items = m.items if m is not None else {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, item in items.items():
        if name not in fields:
            raise _unknown(item.loc, prefix + name, name, list(fields), cls, top=prefix == "")
    kwargs = {}
    for name, f in fields.items():
        dotted = prefix + name
        item = items.get(name)
        if item is not None:
            locs[dotted] = item.loc
        if "section" in f.metadata:
            sub = None if item is None else item.value
            if sub is not None and not isinstance(sub, _Map):
                raise ConfigError(item.loc, f"expected a mapping of {dotted} keys "
                                  f"({', '.join(x.name for x in dataclasses.fields(f.metadata['section']))}), "
                                  f"got {_show(sub)}", key=dotted)
            kwargs[name] = _build(f.metadata["section"], sub, dotted + ".",
                                  where if item is None else item.loc, locs)
            continue
        spec: Spec = f.metadata["spec"]
        if item is None:
            kwargs[name] = dict(spec.default) if isinstance(spec.default, dict) else spec.default
        elif spec.kind in ("options", "weights"):
            kwargs[name] = _check_mapping(spec, item, dotted, locs)
        else:
            kwargs[name] = _check_scalar(spec, item.value, item.loc, dotted)
    return cls(**kwargs)


def _loc(locs: Dict[str, Loc], *keys: str, default: Loc) -> Loc:
    for k in keys:
        if k in locs:
            return locs[k]
    return default


