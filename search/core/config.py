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
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple, Union

import yaml

from .configfile import (ConfigError, Loc, Spec, _Item, _Map, _apply_override, _build, _from_node,
                     _from_value, _loc, _show, _suggest, key, section)
from .configfile import describe_schema as _describe_schema
from .configfile import schema_rows as _schema_rows

__all__ = ["ConfigError", "Config", "TaskConfig", "SearchConfig", "WorkersConfig",
           "HoldoutConfig", "CheckpointConfig", "ProgressConfig", "Spec", "MUTATIONS",
           "DEFAULTS", "load_config", "config_from_dict", "config_to_dict", "dump_config",
           "describe_schema", "schema_rows"]

# Mutation kinds of the search, with their default sampling weights.
MUTATIONS = ("insert", "delete", "change_arg", "scale_const")


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
    """(dotted key, Spec) for every key of the search config, in schema order."""
    return _schema_rows(cls, prefix)


def describe_schema() -> str:
    """The search config's keys as a markdown table: key, type, default, meaning."""
    return _describe_schema(Config)


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
        _apply_override(root, str(dotted), value, Loc(label), Config)
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

