"""The funnel's config (``configs/funnel.yaml``): pydantic models on the YAML layer of
:mod:`..core.yaml_config`, so the typing rules and one-line errors naming file, line and key
are the search config's (``funnel.yaml:12: unknown key 'stages[0].taks'; allowed: ...``).

Keys (all optional but ``stages``): ``top_k, workers, reference, pass_margin_se, baselines,
defaults, stages``; ``workers`` is the search config's mapping (``count, address,
pin_cores``; ``workers: N`` is short for ``{count: N}``). ``defaults`` holds the stage keys
that every stage inherits (``tune_seeds, eval_seeds, lr_ratio, lr_range, wd_ratio, wd_range,
max_extend``); a stage also has ``name, task, steps, batch_size, options`` and ``keep``
(successive halving: at most this many of the candidates that pass go on, the best
first). Checks:
``eval_seeds`` is a multiple of ``tune_seeds``; ranges are ``[lo, hi]`` with ``lo <= 0 <=
hi``; ratios are > 1; stage names are distinct; the task accepts the options; a baseline is
``{optax: adamw|lion, <hyperparameters>}`` or ``{program: library name or file}``;
``reference`` names a baseline. A stage's task is built when the config is loaded: its
options, ``steps`` and ``batch_size`` keep the task's own rules (errors at their key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Dict, Optional, Tuple

from optevo.proxy_tasks.tasks.base import TaskOptionError
from optevo.proxy_tasks.tuning import OFF, LineRule
from pydantic import BeforeValidator, Field, create_model, field_validator, model_validator

from ..core.config import (Text, WorkersConfig, check_task_name, check_task_options,
                           option_failure)
from ..core.jobs import baseline_name
from ..core.yaml_config import (Loc, Model, apply_overrides, fail, read_yaml, show, suggest,
                                validate)

WD_OFF = OFF  # the weight-decay grid index of factor 0 (decay switched off)
FUNNEL_JSON = "funnel.json"
RESULTS = "results.jsonl"
TIMING = "timing.json"

STAGE_DEFAULTS = {"tune_seeds": 2, "eval_seeds": 4, "lr_ratio": 2.0, "lr_range": [-4, 4],
                  "wd_ratio": 3.0, "wd_range": [-1, 1], "max_extend": 4}
DEFAULT_BASELINES = {  # named as every report names them (``jobs.baseline_name``)
    baseline_name("adamw"): {"optax": "adamw", "learning_rate": 1e-3, "weight_decay": 1e-4},
    baseline_name("lion"): {"optax": "lion", "learning_rate": 1e-4, "weight_decay": 1e-2},
    "adamw_start": {"program": "adam_style"},
}


def _range(v: Any) -> Tuple[int, int]:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(type(x) is int for x in v) \
            and v[0] <= 0 <= v[1]:
        return tuple(v)
    raise fail("expected two integers [lo, hi] with lo <= 0 <= hi (multipliers ratio**lo.."
               f"ratio**hi), got {list(v) if isinstance(v, (list, tuple)) else show(v)}")


Range = Annotated[Tuple[int, int], BeforeValidator(_range)]
_D = STAGE_DEFAULTS


def _wd_range(v: Any) -> Tuple[int, int]:
    lo, hi = _range(v)
    if lo <= OFF:
        raise fail(f"expected lo > {OFF} (index {OFF} is decay switched off), got {lo}")
    return lo, hi


class Stage(Model):
    name: Text
    task: str
    steps: Optional[int] = Field(None, ge=1)
    batch_size: Optional[int] = Field(None, ge=1)
    options: Dict[str, Any] = {}
    tune_seeds: int = Field(_D["tune_seeds"], ge=1)
    eval_seeds: int = Field(_D["eval_seeds"], ge=1)
    lr_ratio: float = Field(_D["lr_ratio"], gt=1)
    lr_range: Range = tuple(_D["lr_range"])
    wd_ratio: float = Field(_D["wd_ratio"], gt=1)
    wd_range: Annotated[Tuple[int, int], BeforeValidator(_wd_range)] = tuple(_D["wd_range"])
    max_extend: int = Field(_D["max_extend"], ge=0)
    keep: Optional[int] = Field(None, ge=1)  # at most this many candidates pass on (the best)
    _task = field_validator("task")(check_task_name)

    @model_validator(mode="after")
    def _consistent(self):
        if self.eval_seeds % self.tune_seeds:
            raise fail("must be a multiple of tune_seeds (eval jobs use the same batch of "
                       "seeds)", "eval_seeds")
        given = {k: v for k, v in self.task_options().items() if k not in self.options}
        check_task_options(self.task, self.options, {"steps": "steps", "batch_size":
                                                     "batch_size"}, given)
        try:
            self.make_task()
        except TaskOptionError as e:  # a rule the task checks only once it is built
            raise option_failure(e, given) from None
        except (TypeError, ValueError, KeyError) as e:  # a plugin task's own refusal
            raise fail(f"task {self.task!r} rejects its options: {e}", "options") from None
        return self

    @property
    def lr_rule(self) -> LineRule:
        """The stage's learning-rate line (``optevo.proxy_tasks.tuning``: the one rule)."""
        return LineRule(self.lr_ratio, *self.lr_range, self.max_extend)

    @property
    def wd_rule(self) -> LineRule:
        """The weight-decay factor line: never grown downwards; "off" brackets it."""
        return LineRule(self.wd_ratio, *self.wd_range, self.max_extend, grow_down=False,
                        with_off=True)

    def wd_factor(self, j: int) -> float:
        return self.wd_rule.value(j)

    def task_options(self) -> Dict:
        from optevo.proxy_tasks import task_options
        accepts = task_options(self.task)
        return {**self.options, **{k: getattr(self, k) for k in ("steps", "batch_size")
                                   if getattr(self, k) is not None and k in accepts}}

    def make_task(self):
        from optevo.proxy_tasks import get_task
        return get_task(self.task, **self.task_options())

    def describe(self) -> str:
        """The task's one line with the seeds this stage uses (a task's own line names its
        default seed count, which the funnel does not use)."""
        import re
        text = re.sub(r", \d+ seeds\b", "", self.make_task().describe())
        return (f"{text}; tuned on seeds 0..{self.tune_seeds - 1}, trained on "
                f"{self.eval_seeds} fresh seeds")


# ``defaults``: the stage's own fields (same types, bounds and checks) for the inherited keys
StageDefaults = create_model("StageDefaults", __base__=Model, **{
    k: (Stage.model_fields[k].annotation, Stage.model_fields[k]) for k in STAGE_DEFAULTS})


def _baseline(name: str, d: Any) -> Dict:
    from optevo.dsl.library import find_program
    from optevo.dsl.program import ProgramError
    from optevo.proxy_tasks.baselines.specs import spec_text
    if not isinstance(d, dict) or ("optax" in d) == ("program" in d):
        raise fail("expected a mapping with either 'optax: adamw|lion' (and hyperparameters) "
                   f"or 'program', got {show(d)}", (name,))
    if "program" in d:
        if set(d) != {"program"}:
            raise fail("a program baseline takes only 'program'", (name,))
        try:
            find_program(d["program"])
        except ProgramError as e:
            raise fail(str(e) if e.filename else e.msg, (name, "program"), (name,)) from None
        return dict(d)
    hyper = {k: x for k, x in d.items() if k != "optax"}
    for k, x in hyper.items():
        if type(x) not in (int, float):
            raise fail(f"expected a number, got {show(x)}", (name, k), (name,))
    try:
        spec_text(d["optax"], **hyper)
    except ValueError as e:
        raise fail(str(e), (name,)) from None
    return dict(d)


def _workers(v: Any) -> Any:
    """``workers: N`` is short for ``workers: {count: N}``."""
    return {"count": v} if type(v) is int else v


class FunnelConfig(Model):
    top_k: int = Field(3, ge=1)
    workers: Annotated[WorkersConfig, BeforeValidator(_workers)] = WorkersConfig()
    reference: str = baseline_name("adamw")
    pass_margin_se: float = Field(0.0, ge=0)
    keep_all: bool = False  # every candidate runs every stage (a table, not a selection)
    baselines: Dict[str, Dict[str, Any]] = DEFAULT_BASELINES
    defaults: StageDefaults = Field(StageDefaults(), exclude=True)
    stages: Tuple[Stage, ...] = Field(min_length=1, strict=False, json_schema_extra={
        "expected": "a non-empty list of stages"})

    @model_validator(mode="before")
    @classmethod
    def _legacy_worker_keys(cls, d: Any) -> Any:
        """Funnels saved before ``workers`` was the search's mapping kept ``address`` and
        ``pin_cores`` at the top; they resume."""
        if isinstance(d, dict) and ("address" in d or "pin_cores" in d) and \
                not isinstance(d.get("workers"), dict):
            d = dict(d)
            w = {"count": d.pop("workers", 2)}
            w.update({k: d.pop(k) for k in ("address", "pin_cores") if k in d})
            d["workers"] = w
        return d

    @field_validator("baselines", mode="before")
    @classmethod
    def _baselines(cls, v: Any) -> Any:
        if not isinstance(v, dict) or not v:
            raise fail(f"expected a non-empty mapping of baselines, got {show(v)}")
        return {str(k): _baseline(str(k), d) for k, d in v.items()}

    @model_validator(mode="after")
    def _names(self):
        names = [s.name for s in self.stages]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise fail(f"stage names must be distinct; {n!r} is also stages["
                           f"{names.index(n)}].name", ("stages", i, "name"))
        if self.reference not in self.baselines:
            raise fail(f"expected a baseline name ({', '.join(self.baselines)}), got "
                       f"{show(self.reference)}{suggest(self.reference, self.baselines)}",
                       "reference")
        return self

    def to_json(self) -> Dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, d: Dict) -> "FunnelConfig":
        return config_from_dict(d, "<funnel.json>")


def config_from_dict(d: Any, src: str, locs=None) -> FunnelConfig:
    """Validate plain data (a file's, or a saved ``funnel.json``), errors located at ``src`` or
    by ``locs``. Each stage takes the ``defaults`` it does not set (errors at their line)."""
    locs = {} if locs is None else locs
    if isinstance(d, dict) and isinstance(d.get("stages"), list):
        inherit = d.get("defaults") if isinstance(d.get("defaults"), dict) else {}
        d = {**d, "stages": [{**inherit, **s} if isinstance(s, dict) else s for s in d["stages"]]}
        for i, k in ((i, k) for i, s in enumerate(d["stages"]) for k in inherit):
            locs.setdefault(("stages", i, k), locs.get(("defaults", k), Loc(src)))
    return validate(FunnelConfig, d, locs, Loc(src))


def default_config_path() -> Path:
    local = Path("configs/funnel.yaml")
    if local.exists():
        return local
    from importlib import resources
    return Path(str(resources.files("optevo.configs") / "funnel.yaml"))


def load_funnel_config(path=None, overrides=None, sources=None) -> FunnelConfig:
    """The funnel config at ``path`` (default: ``configs/funnel.yaml``) with ``overrides``
    (``--set``: {dotted key: YAML text}; ``sources``: the label of each, for errors). A key
    ``stages.KEY`` sets KEY in every stage, ``stages.NAME.KEY`` in the stage NAME; any
    other key is the file's (``defaults.tune_seeds``, ``pass_margin_se``, ...)."""
    from ..core.yaml_config import find_config
    path = find_config(path) if path else default_config_path()
    data, locs = read_yaml(path)
    overrides, sources = dict(overrides or {}), dict(sources or {})
    if isinstance(data, dict) and isinstance(data.get("stages"), list):
        names = [s.get("name") if isinstance(s, dict) else None for s in data["stages"]]
        for key in [k for k in overrides if k.startswith("stages.")]:
            text, label = overrides.pop(key), sources.pop(key, "override")
            rest = key[len("stages."):]
            head, _, tail = rest.partition(".")
            targets = [names.index(head)] if head in names and tail else \
                range(len(names))
            sub = tail if head in names and tail else rest
            for i in targets:
                overrides[f"stages.{i}.{sub}"], sources[f"stages.{i}.{sub}"] = text, label
        _set_in_stages(data, locs, overrides, sources)
    apply_overrides(FunnelConfig, data, locs, overrides, sources)
    return config_from_dict(data, str(path), locs)


def _set_in_stages(data, locs, overrides, sources) -> None:
    """Apply (and remove) the ``stages.I.KEY`` overrides: each value read as YAML, its
    errors located at its ``--set``."""
    import yaml
    for key in [k for k in overrides if k.startswith("stages.")]:
        _, i, sub = key.split(".", 2)
        node = data["stages"][int(i)]
        parts = sub.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else node
        if isinstance(node, dict):
            node[parts[-1]] = yaml.safe_load(overrides[key]) if overrides[key] else None
            where = Loc(sources.get(key, "override"))
            for j in range(1, len(parts)):  # a new mapping on the way: located at the --set
                locs.setdefault(("stages", int(i), *parts[:j]), where)
            locs[("stages", int(i), *parts)] = where
        del overrides[key]
