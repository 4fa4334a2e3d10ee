"""Search configs: YAML files (``configs/quick.yaml``) validated by pydantic models.

::

    cfg = load_config("configs/quick.yaml", {"search.max_evals": 50},
                      sources={"search.max_evals": "--max-evals"})
    cfg.search.population, cfg.task.name, cfg.workers.count, ...

Each section is a frozen model whose fields are its keys (type, default, bounds, one-line
doc); missing sections and keys take their defaults (:data:`DEFAULTS`), and
:func:`describe_schema` renders the keys as the README's table. Bad input raises
:class:`ConfigError`: ONE line with file and line (or an override's label), dotted key and
allowed values; typing and override rules are those of :mod:`.yaml_config`. Checks across
keys: ``search.tournament <= search.population``; ``task.options`` are keyword arguments of
the task's constructor that keep the task's own rules (``proxy_tasks.tasks.base.Rule``: the
same checks as its constructor's); ``search.start`` is a library program or a program file.
Task names come from the task registry; mutation names and default weights
from the mutation registry (:mod:`.mutations`), read when a config is loaded, so a mutation
registered before :func:`load_config` can be enabled in ``search.mutations``.
"""

from __future__ import annotations

import json
import os
import re
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

import yaml
from pydantic import Field, field_validator, model_validator

from . import yaml_config
from . import mutations as _mutations
from . import plugins as _plugins
from .yaml_config import (ConfigError, Loc, Model, apply_overrides, fail, read_yaml,
                         show, suggest, validate)

MUTATIONS = _mutations.MUTATIONS.keys()  # names of the registered mutations (a live view)
Text = Annotated[str, Field(pattern=r"\S")]  # a non-empty string


def key(default: Any, doc: str, **kw) -> Any:
    return Field(default, description=doc, **kw)


def check_task_name(name: str) -> str:
    from optevo.proxy_tasks import task_names  # lazy: imports jax
    if name not in task_names():
        raise fail(f"expected one of {', '.join(task_names())}; got {show(name)}"
                   f"{suggest(name, task_names())}")
    return name


def check_task_options(task: str, options: Mapping[str, Any], reserved: Mapping[str, str],
                       given: Optional[Mapping[str, Any]] = None):
    """``options`` must map identifiers to numbers, strings or booleans that are keyword
    arguments of ``task``'s constructor and keep the task's own rules (``check_options``:
    type, range, allowed values, rules across options); ``reserved`` maps an option set
    elsewhere to its key, and ``given`` holds those that reach the task (checked with the
    options). Errors name ``options.NAME``, or the key of a ``given`` one."""
    from optevo.proxy_tasks import task_options
    from optevo.proxy_tasks.tasks.base import TaskOptionError, check_options, task_class
    params = task_options(task)
    allowed = [n for n in params if n not in reserved]
    for name, value in options.items():
        at = (("options", name), "options")
        if not name.isidentifier():
            raise fail(f"option names must be identifiers, got {name!r}", *at)
        if value is None or not isinstance(value, (bool, int, float, str)):
            raise fail(f"expected a number, string or boolean, got {show(value)}", *at)
        if name in reserved:
            raise fail(f"set {reserved[name]} instead", *at)
        if params and name not in allowed:
            raise fail(f"unknown option '{name}' of task {task}; allowed: {', '.join(allowed)}"
                       f"{suggest(name, allowed)}", *at)
    try:
        check_options(task_class(task), {**options, **(given or {})})
    except TaskOptionError as e:
        raise option_failure(e, given or {}) from None


def option_failure(e, given=()):
    """A task's ``TaskOptionError`` as a validator's error at its key: ``options.NAME``, or
    ``NAME`` for an option in ``given`` (one set by a key of its own)."""
    return fail(e.problem, e.option if e.option in given else ("options", e.option), "options")


class TaskConfig(Model):
    name: str = key("digits_mlp", "proxy task that scores programs (a registered task)",
                    json_schema_extra={"type": "task name"})
    steps: Optional[int] = key(None, "training steps per evaluation (null: the task's "
                               "default)", ge=1, le=10_000_000)
    seeds: int = key(4, "fitness seeds per program; the fitness averages them", ge=1,
                     le=4096)
    options: Dict[str, Any] = key({}, "task constructor overrides, e.g. {batch_size: 64}",
                                  json_schema_extra={"expected": "a mapping from option names "
                                                     "to numbers, strings or booleans"})
    weight: float = key(1.0, "the task's weight when `task` lists several (a suite)", gt=0)
    _name = field_validator("name")(check_task_name)

    @model_validator(mode="after")
    def _task_takes_options(self):
        check_task_options(self.name, self.options, {"steps": "task.steps", "seeds":
                                                     "task.seeds"})
        return self


class SearchConfig(Model):
    population: int = key(100, "programs kept alive (regularized evolution)", ge=2,
                          le=1_000_000)
    tournament: int = key(10, "tournament size: parents are the best of this many random "
                          "members (at most population)", ge=1)
    max_evals: Optional[int] = key(2000, "stop after training this many children (null: no "
                                   "limit)", ge=1)
    time_limit: Optional[float] = key(None, "stop after this many seconds (null: no limit)",
                                      gt=0)
    start: Text = key("adam_style", "start program: a library name, a program file, or "
                      "RUN_DIR:ID (a program of an earlier run)")
    max_length: int = key(32, "maximum statements in a child program", ge=1, le=1024)
    restart_after: Optional[int] = key(None, "evaluations without improvement before "
                                       "restarting from the best (null: never)", ge=1)
    max_mutation_tries: int = key(100, "attempts to draw a valid, new child before giving up "
                                  "on a parent", ge=1)
    hurdle_seeds: Optional[int] = key(None, "train a new child on this many of its fitness "
                                      "seeds first, the rest only if it clears the hurdle "
                                      "(null: no hurdle)", ge=1)
    fingerprint: bool = key(False, "also give a child the fitness of an earlier program with "
                            "the same functional fingerprint (outputs of a few steps on fixed "
                            "inputs; dsl/fingerprint.py)")
    matrix_ops: bool = key(False, "let inserted statements draw the matrix ops orthogonalize, "
                           "row_mean, col_mean (dsl/matrix_ops.py; Muon is then reachable)")
    lr_grid: int = key(1, "score each child at this many learning-rate multipliers around "
                       "the one it inherits (odd; its best point is its fitness and passes "
                       "on to its children; 1: the parent's multiplier only)", ge=1, le=9)
    lr_grid_ratio: float = key(2.0, "ratio between neighbouring points of search.lr_grid",
                               gt=1, le=16)
    ignores_lr: Literal["keep", "reject"] = key(
        "keep", "a child whose update never reads lr (it trains alike at every learning rate "
        "and schedule, so its exported learning_rate does nothing): keep it, flagged in the "
        "live display, report and export, or reject it (counted as ignores_lr)")
    seed_population: Optional[Text] = key(
        None, "warm start: RUN_DIR of an earlier run whose best distinct programs (at most "
        "a population's worth) are trained first, before any mutation (null: none)")
    islands: int = key(1, "split the population into this many islands (ring migration; "
                       "1: the paper's single population)", ge=1, le=64)
    migrate_every: int = key(500, "with islands: children joined between migrations",
                             ge=1)
    migrant: Literal["best", "random"] = key(
        "best", "with islands: each island's emigrant, its best or a random member")
    hurdle_quantile: float = key(0.5, "the hurdle: this quantile of the population's hurdle "
                                 "figures (a child worse than it is not trained further)",
                                 gt=0, le=1)
    mutations: Dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=_mutations.default_weights,
        description="sampling weight of each mutation kind (>= 0, one > 0)")

    @field_validator("start")
    @classmethod
    def _start(cls, v: str) -> str:
        from optevo.dsl.library import find_program
        from optevo.dsl.program import ProgramError
        head, sep, _ = v.rpartition(":")
        if sep and Path(head).is_dir():  # RUN_DIR:ID: read when the run starts (check_tasks)
            return v
        try:
            find_program(v)
        except ProgramError as e:
            raise fail(str(e) if e.filename else e.msg) from None
        return v

    @field_validator("mutations", mode="before")
    @classmethod
    def _known_mutations(cls, v: Any) -> Any:
        weights = _mutations.default_weights()
        if not isinstance(v, dict):
            raise fail(f"expected a mapping from {', '.join(weights)} to numbers >= 0, got "
                       f"{show(v)}")
        for name in v:
            if name not in weights:
                raise fail(f"unknown key 'search.mutations.{name}'; allowed: "
                           f"{', '.join(weights)}{suggest(name, weights)}", (name,), keyed=False)
        return {**weights, **v}  # missing names keep their default weight

    @model_validator(mode="after")
    def _cross_checks(self):
        if not any(w > 0 for w in self.mutations.values()):
            raise fail("at least one weight must be > 0, got all zero", "mutations")
        if self.tournament > self.population:
            raise fail(f"expected an integer <= search.population ({self.population}), got "
                       f"{self.tournament}", "tournament", "population")
        each = self.population // self.islands
        if each < 2:
            raise fail(f"expected at most search.population / 2 ({self.population // 2}) "
                       f"islands, so that each holds 2 members; got {self.islands}",
                       "islands", "population")
        if self.islands > 1 and self.tournament > each:
            raise fail(f"expected an integer <= an island's size (search.population // "
                       f"search.islands = {each}), got {self.tournament}", "tournament",
                       "islands")
        return self


class WorkersConfig(Model):
    count: int = key(2, "evaluation workers (0: evaluate in-process, without Ray)", ge=0)
    address: Optional[Text] = key(None, "Ray cluster address (null: start a local Ray)")
    batch: int = key(4, "children sent to a worker per call", ge=1)
    pin_cores: bool = key(True, "pin each worker to its own CPU core")


class HoldoutConfig(Model):
    top_k: int = key(5, "best programs re-evaluated on fresh seeds at the end", ge=1,
                     le=1000)
    seeds: int = key(8, "number of fresh seeds (never used for selection)", ge=2, le=4096)
    baselines: List[str] = key(["hyper_adam", "l2l"], "baselines re-checked beside tuned "
                               "AdamW, their lr and decay tuned (baseline kinds: hyper_sgd, "
                               "hyper_sgdm, hyper_adam, l2l, lion)")

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, v):
        from optevo.proxy_tasks.baselines.specs import HYPER
        bad = [b for b in v if b not in HYPER or b == "adamw"]
        if bad:
            raise fail(f"unknown baseline {bad[0]!r}; known: "
                       f"{', '.join(k for k in HYPER if k != 'adamw')} (AdamW is always there)")
        return v


class CheckpointConfig(Model):
    every_seconds: float = key(30.0, "seconds between checkpoints of the search state", gt=0)


class ProgressConfig(Model):
    enabled: bool = key(True, "show a live progress display")


class Config(Model):
    plugins: List[str] = key([], "Python modules or .py files imported first, in the driver "
                             "and every worker (they register tasks, mutations, ops)")
    seed: int = key(0, "master random seed of the search", ge=0)
    name: Optional[str] = key(None, "run name (null: the config file's name)",
                              pattern="^[A-Za-z0-9][A-Za-z0-9._-]*$", json_schema_extra={
                                  "expected": "a name of letters, digits, '.', '_', '-'"})
    task: yaml_config.one_or_many(TaskConfig, "a suite") = Field(
        default_factory=TaskConfig, description="the proxy task, or a list of them (a suite)")
    search: SearchConfig = Field(default_factory=SearchConfig)  # read at load time
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    holdout: HoldoutConfig = Field(default_factory=HoldoutConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    progress: ProgressConfig = Field(default_factory=ProgressConfig)

    @model_validator(mode="after")
    def _hurdle_below_the_seeds(self):
        h, fewest = self.search.hurdle_seeds, min(t.seeds for t in self.tasks)
        if h is not None and h >= fewest:
            raise fail(f"expected an integer < task.seeds ({fewest}), got {h}",
                       "search.hurdle_seeds")
        if self.search.lr_grid % 2 == 0:
            raise fail(f"expected an odd number (points centred on the inherited multiplier)"
                       f", got {self.search.lr_grid}", "search.lr_grid")
        if self.search.lr_grid > 1 and h is not None:
            raise fail("a hurdle and an lr grid do not combine yet: set search.hurdle_seeds "
                       "to null or search.lr_grid to 1", "search.lr_grid")
        return self


    @property
    def tasks(self) -> Tuple[TaskConfig, ...]:
        """The task(s) that score programs: one, or the suite ``task`` lists."""
        return tuple(self.task) if isinstance(self.task, list) else (self.task,)

    @property
    def task_label(self) -> str:
        """``digits_mlp``, or ``digits_mlp+text_lm`` for a suite."""
        return "+".join(t.name for t in self.tasks)


DEFAULTS = Config()  # the default config; config_to_dict(DEFAULTS) for plain data


describe_schema = partial(yaml_config.describe_schema, Config)  # the README's markdown table


def schema_rows(model=Config, prefix: str = ""):
    """(dotted key, row with .type, .default, .doc) for every key, in schema order."""
    return yaml_config.schema_rows(model, prefix)


def _import_plugins(data: dict, locs, source: str, imports: Sequence[str], load: bool = True):
    """Import the config's ``plugins`` and ``--import`` modules before anything is validated
    (a plugin's task and mutation names are then known); ``--import`` ones join the list.
    ``load`` False: the list is checked, and nothing imported."""
    where = locs.get(("plugins",), Loc(source))
    names = data.get("plugins") if data.get("plugins") is not None else []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(where, "expected a list of module names or .py files", "plugins")
    names = list(dict.fromkeys(names + [n for n in imports if n not in names]))
    if names or "plugins" in data:
        data["plugins"] = names
    for n in names if load else ():
        try:
            _plugins.resolve(n)
        except _plugins.PluginError as e:
            raise ConfigError(where if n in (data.get("plugins") or []) and n not in imports
                              else Loc("--import"), str(e), "plugins") from None


def _resolve(data: Any, locs, source: str, overrides, sources, imports=(),
             import_plugins: bool = True) -> Config:
    if isinstance(data, dict):
        apply_overrides(Config, data, locs, overrides, sources)
        _import_plugins(data, locs, source, imports, import_plugins)
    try:
        cfg = validate(Config, data, locs, Loc(source))
    except ConfigError as e:
        named = data.get("plugins") if isinstance(data, dict) and not import_plugins else None
        if not named:
            raise
        raise ConfigError(e.where, f"{e.problem} (the config names the plugins "
                          f"{', '.join(named)}, which are not imported here: a command that "
                          "only reads a run runs none of its code)", e.key) from None
    stem = "" if source.startswith("<") else re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem)
    return cfg if cfg.name else cfg.model_copy(update={"name": stem.lstrip("._-") or "run"})


def load_config(path, overrides: Optional[Mapping[str, Any]] = None,
                sources: Optional[Mapping[str, str]] = None, imports: Sequence[str] = (),
                import_plugins: bool = True) -> Config:
    """Read, validate and resolve a YAML config; raise :class:`ConfigError` on bad input.

    ``overrides`` maps dotted keys to values applied over the file; ``sources`` maps an
    override's key to the label its errors show (e.g. ``"--max-evals"``; default
    ``"override"``). A null ``name`` becomes the file's stem. ``imports`` (``--import``) are
    plugins added to the config's ``plugins`` list; all are imported before validation, unless
    ``import_plugins`` is False (reading a run: a task or mutation name only a plugin registers
    is then a ConfigError naming the plugins)."""
    path = yaml_config.find_config(path)
    return _resolve(*read_yaml(path), str(path), overrides, sources, imports, import_plugins)


def config_from_dict(d: Mapping[str, Any], source: str = "<dict>",
                     overrides: Optional[Mapping[str, Any]] = None,
                     sources: Optional[Mapping[str, str]] = None) -> Config:
    """Validate plain nested data like a file's contents, errors located at ``source``. A null
    ``name`` becomes ``source``'s stem, or ``"run"`` for a ``<label>``."""
    plain = json.loads(json.dumps(d, default=str))  # a copy with string keys, as from YAML
    return _resolve(plain, {}, source, overrides, sources)


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """Plain nested data in schema order; ``config_from_dict(config_to_dict(cfg)) == cfg``."""
    return cfg.model_dump()


def config_text(cfg: Config) -> str:
    """The resolved config as YAML text; it loads back equal."""
    return ("# optevo search config, resolved (defaults and overrides applied)\n"
            + yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def dump_config(cfg: Config, path) -> None:
    """Write the resolved config as YAML, atomically (a run directory's goes through
    ``RunDir.write_config``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(config_text(cfg), encoding="utf-8")
    os.replace(tmp, path)
