"""Search configs: YAML files validated against a declarative schema.

``optevo search CONFIG`` reads a YAML file such as ``configs/quick.yaml``::

    cfg = load_config("configs/quick.yaml", {"search.max_evals": 50},
                      sources={"search.max_evals": "--max-evals"})
    cfg.search.population, cfg.task.name, cfg.workers.count, ...

Every section is a frozen dataclass and every key is ONE row in it (type, default, bounds or
choices, one-line doc), e.g. ``population: int = key("int", 100, "...", min=2)``; adding a key
is adding a row. Missing sections and keys take their defaults (:data:`DEFAULTS`);
:func:`describe_schema` renders the rows as a markdown table for the README.

Bad input raises :class:`ConfigError` (a ``ValueError``) whose message is ONE line naming the
place (``file:line``, or an override's label such as ``--max-evals``), the dotted key and the
allowed values, e.g.::

    configs/x.yaml:12: search.tournament: expected an integer >= 1, got 'ten'
    configs/x.yaml:7: unknown key 'search.tournamnet'; allowed: population, ... (did you mean tournament?)

Line numbers come from the YAML node marks (``yaml.compose``), i.e. the line of the key.

Typing rules: an int key accepts only YAML integers (``2.0``, ``2.5``, ``true`` and ``'2'`` are
errors: a float in an int key is more often a mistake than a shorthand); a float key accepts
integers and floats (stored as float; NaN and infinities are rejected); a bool key accepts only
``true``/``false``; ``null`` is accepted only where a row says "or null".

Overrides (``load_config(path, overrides)``) are dotted keys (``"seed"``, ``"search.max_evals"``,
``"search.mutations.insert"``, ``"task.options.batch_size"``) validated exactly like file keys,
their errors located at the override's label. A string override for a non-string key is read
as a YAML scalar, so ``{"search.population": "50"}`` (from ``--set search.population=50``)
works; a string key takes the string as is (``"null"`` or ``"~"`` means null where allowed).
A mapping override is merged into the mapping it names.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, \
    Union

import yaml

__all__ = ["ConfigError", "Config", "TaskConfig", "SearchConfig", "WorkersConfig",
           "HoldoutConfig", "CheckpointConfig", "ProgressConfig", "Spec", "MUTATIONS",
           "DEFAULTS", "load_config", "config_from_dict", "config_to_dict", "dump_config",
           "describe_schema", "schema_rows"]

# Mutation kinds of the search, with their default sampling weights.
MUTATIONS = ("insert", "delete", "change_arg", "scale_const")


# --------------------------------------------------------------------------------------------
# errors and locations


class Loc(NamedTuple):
    """Where a value came from: a file and line, an override label, or a dict's source."""

    source: str
    line: Optional[int] = None

    def __str__(self) -> str:
        return self.source if self.line is None else f"{self.source}:{self.line}"


class ConfigError(ValueError):
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


def _task_names():
    from optevo.proxy_tasks import task_names  # lazy: imports jax
    return task_names()


def _check_start(value: str) -> Optional[str]:
    from optevo.dsl.library import library_names  # lazy
    names = library_names()
    if value in names or Path(value).is_file():
        return None
    return (f"expected a library program ({', '.join(names)}) or an existing program file, "
            f"got {value!r}{_suggest(value, names)}")


_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._-]*"


@dataclass(frozen=True)
class TaskConfig:
    name: str = key("str", "digits_mlp", "proxy task that scores programs (a registered task)",
                    choices=_task_names, type_doc="task name")
    steps: Optional[int] = key("int", None, "training steps per evaluation (null: the task's "
                               "default)", min=1, nullable=True)
    seeds: int = key("int", 4, "fitness seeds per program; the fitness averages them", min=1)
    options: Dict[str, Any] = key("options", {}, "task constructor overrides, e.g. "
                                  "{batch_size: 64}", type_doc="mapping")


@dataclass(frozen=True)
class SearchConfig:
    population: int = key("int", 100, "programs kept alive (regularized evolution)", min=2)
    tournament: int = key("int", 10, "tournament size: parents are the best of this many "
                          "random members (at most population)", min=1)
    max_evals: Optional[int] = key("int", 2000, "stop after training this many children "
                                   "(null: no limit)", min=1, nullable=True)
    time_limit: Optional[float] = key("float", None, "stop after this many seconds "
                                      "(null: no limit)", min=0, min_open=True, nullable=True)
    start: str = key("str", "adam_style", "start program: a library name or a program file",
                     check=_check_start, type_doc="str")
    max_length: int = key("int", 32, "maximum statements in a child program", min=1)
    restart_after: Optional[int] = key("int", None, "evaluations without improvement before "
                                       "restarting from the best (null: never)", min=1,
                                       nullable=True)
    max_mutation_tries: int = key("int", 100, "attempts to draw a valid, new child before "
                                  "giving up on a parent", min=1)
    mutations: Dict[str, float] = key("weights", {m: 1.0 for m in MUTATIONS},
                                      "sampling weight of each mutation kind (>= 0, one > 0)",
                                      choices=MUTATIONS, type_doc="mapping name -> float >= 0")


@dataclass(frozen=True)
class WorkersConfig:
    count: int = key("int", 2, "evaluation workers (0: evaluate in-process, without Ray)",
                     min=0)
    address: Optional[str] = key("str", None, "Ray cluster address (null: start a local Ray)",
                                 nullable=True)
    batch: int = key("int", 4, "children sent to a worker per call", min=1)
    pin_cores: bool = key("bool", True, "pin each worker to its own CPU core")


@dataclass(frozen=True)
class HoldoutConfig:
    top_k: int = key("int", 5, "best programs re-evaluated on fresh seeds at the end", min=1)
    seeds: int = key("int", 8, "number of fresh seeds (never used for selection)", min=2)


@dataclass(frozen=True)
class CheckpointConfig:
    every_seconds: float = key("float", 30.0, "seconds between checkpoints of the search "
                               "state", min=0, min_open=True)


@dataclass(frozen=True)
class ProgressConfig:
    enabled: bool = key("bool", True, "show a live progress display")


@dataclass(frozen=True)
class Config:
    seed: int = key("int", 0, "master random seed of the search", min=0)
    name: Optional[str] = key("str", None, "run name (null: the config file's name)",
                              nullable=True, pattern=_NAME_RE,
                              pattern_doc="name of letters, digits, '.', '_', '-'")
    task: TaskConfig = section(TaskConfig, "the proxy task")
    search: SearchConfig = section(SearchConfig, "evolution")
    workers: WorkersConfig = section(WorkersConfig, "parallel evaluation")
    holdout: HoldoutConfig = section(HoldoutConfig, "final re-evaluation on fresh seeds")
    checkpoint: CheckpointConfig = section(CheckpointConfig, "checkpoints")
    progress: ProgressConfig = section(ProgressConfig, "display")


DEFAULTS = Config()  # the default config; config_to_dict(DEFAULTS) for plain data


def schema_rows(cls=Config, prefix: str = "") -> Iterator[Tuple[str, Spec]]:
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


def describe_schema() -> str:
    """The schema as a markdown table: key, type, default, meaning."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for dotted, spec in schema_rows():
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


def _unknown(loc: Loc, dotted: str, name: str, allowed: List[str], cls=None) -> ConfigError:
    hint = _suggest(name, allowed)
    if not hint and cls is Config:  # a section key written at the top level?
        homes = [d for d, _ in schema_rows() if d.endswith("." + name)]
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


def _apply_override(root: _Map, dotted: str, value: Any, loc: Loc) -> None:
    parts = dotted.split(".")
    cls, m = Config, root
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
            raise _unknown(loc, here, part, list(fields), cls)
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
            raise _unknown(item.loc, prefix + name, name, list(fields), cls)
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


def _check_tournament(cfg: Config, locs: Dict[str, Loc], where: Loc) -> None:
    s = cfg.search
    if s.tournament > s.population:
        raise ConfigError(_loc(locs, "search.tournament", "search.population", default=where),
                          f"expected an integer <= search.population ({s.population}), "
                          f"got {s.tournament}", key="search.tournament")


def _check_task_options(cfg: Config, locs: Dict[str, Loc], where: Loc) -> None:
    """Options must be keyword arguments of the task's constructor, of the default's type."""
    import inspect
    from optevo.proxy_tasks import base  # lazy; the registry has no public class lookup
    for name, value in cfg.task.options.items():
        dotted = f"task.options.{name}"
        at = _loc(locs, dotted, "task.options", default=where)
        if name in ("steps", "seeds"):
            raise ConfigError(at, f"set task.{name} instead", key=dotted)
    cls = getattr(base, "_REGISTRY", {}).get(cfg.task.name)
    if cls is None:
        return
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items()
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in ("steps",
                                                                                     "seeds")]
    for name, value in cfg.task.options.items():
        dotted = f"task.options.{name}"
        at = _loc(locs, dotted, "task.options", default=where)
        if name not in allowed:
            raise ConfigError(at, f"unknown option '{name}' of task {cfg.task.name}; allowed: "
                              f"{', '.join(allowed)}{_suggest(name, allowed)}", key=dotted)
        default = params[name].default
        if isinstance(default, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), \
                "a number"
        elif isinstance(default, str):
            ok, want = isinstance(value, str), "a string"
        else:
            ok, want = True, ""
        if not ok:
            raise ConfigError(at, f"expected {want} (the default is {_show(default)}), "
                              f"got {_show(value)}", key=dotted)


# cross-field checks, run in order after every key passed its own row
_CHECKS = [_check_tournament, _check_task_options]


def _finish(root: _Map, where: Loc, name_from: Optional[str]) -> Config:
    locs: Dict[str, Loc] = {}
    cfg = _build(Config, root, "", where, locs)
    for check in _CHECKS:
        check(cfg, locs, where)
    if cfg.name is None:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name_from).stem) if name_from else ""
        stem = stem.lstrip("._-")
        cfg = dataclasses.replace(cfg, name=stem or "run")
    return cfg


def _with_overrides(root: _Map, overrides: Optional[Mapping[str, Any]],
                    sources: Optional[Mapping[str, str]]) -> _Map:
    for dotted, value in (overrides or {}).items():
        label = (sources or {}).get(dotted, "override")
        _apply_override(root, str(dotted), value, Loc(label))
    return root


# --------------------------------------------------------------------------------------------
# public API


def load_config(path: Union[str, os.PathLike], overrides: Optional[Mapping[str, Any]] = None,
                sources: Optional[Mapping[str, str]] = None) -> Config:
    """Read, validate and resolve a YAML config; raise :class:`ConfigError` on bad input.

    ``overrides`` maps dotted keys to values applied over the file (see the module doc);
    ``sources`` maps an override's key to the label its errors show (e.g. ``"--max-evals"``;
    default ``"override"``). A null ``name`` becomes the file's stem."""
    src = str(path)
    where = Loc(src)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(where, "no such file") from None
    except IsADirectoryError:
        raise ConfigError(where, "is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(where, "not a UTF-8 text file") from None
    except OSError as e:
        raise ConfigError(where, f"cannot read: {e.strerror or e}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:  # empty file: all defaults
            root = _Item(_Map(), Loc(src, 1))
        else:
            root = _from_node(node, yaml.SafeLoader(""), src, "", node.start_mark.line + 1)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid YAML"
        if e.problem and e.context:
            problem += f" ({e.context})"
        raise ConfigError(Loc(src, mark.line + 1 if mark else None),
                          f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(where, f"YAML error: {e}") from None
    if not isinstance(root.value, _Map):
        allowed = ", ".join(f.name for f in dataclasses.fields(Config))
        raise ConfigError(root.loc, f"the top level must be a mapping of keys ({allowed}), "
                          f"got {_show(root.value)}")
    return _finish(_with_overrides(root.value, overrides, sources), where, src)


def config_from_dict(d: Mapping[str, Any], source: str = "<dict>",
                     overrides: Optional[Mapping[str, Any]] = None,
                     sources: Optional[Mapping[str, str]] = None) -> Config:
    """Validate plain nested data (e.g. ``yaml.safe_load`` output) like a file's contents.

    Errors are located at ``source``. A null ``name`` becomes ``source``'s stem unless the
    source is a ``<label>``, then ``"run"``."""
    where = Loc(source)
    if not isinstance(d, Mapping):
        raise ConfigError(where, f"the top level must be a mapping, got {_show(d)}")
    root = _from_value(d, where).value
    return _finish(_with_overrides(root, overrides, sources), where,
                   None if source.startswith("<") else source)


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """Plain nested data in schema order: ``yaml.safe_dump``-able, and
    ``config_from_dict(config_to_dict(cfg)) == cfg``."""
    out: Dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if "section" in f.metadata:
            out[f.name] = config_to_dict(value)
        elif isinstance(value, dict):
            out[f.name] = dict(value)
        else:
            out[f.name] = value
    return out


def dump_config(cfg: Config, path: Union[str, os.PathLike]) -> None:
    """Write the resolved config as YAML (e.g. into a run directory); it loads back equal."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# optevo search config, resolved (defaults and overrides applied)\n"
            + yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
