"""The funnel's config (``configs/funnel.yaml``) and its candidates.

Config keys (all optional but ``stages``; an unknown key or a bad value is a one-line error
naming the file and key): ``top_k, workers, address, pin_cores, reference, pass_margin_se,
baselines, defaults, stages``. ``defaults`` holds stage keys that every stage inherits:
``tune_seeds, eval_seeds, lr_ratio, lr_range, wd_ratio, wd_range, max_extend``; a stage
also has ``name, task, steps, batch_size, options``.

Candidates: each baseline (``{optax: adamw|lion, <hyperparameters>}`` or ``{program: name
or file}``), the top K distinct programs of each run directory given (ranked by search
fitness, simplified exactly, deduplicated by hash), and program files.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

WD_OFF = -99  # the weight-decay grid index of factor 0 (decay switched off)
FUNNEL_JSON = "funnel.json"
RESULTS = "results.jsonl"
TIMING = "timing.json"

STAGE_DEFAULTS = {"tune_seeds": 2, "eval_seeds": 4, "lr_ratio": 2.0, "lr_range": [-4, 4],
                  "wd_ratio": 3.0, "wd_range": [-1, 1], "max_extend": 4}
DEFAULT_BASELINES = {
    "optax_adamw": {"optax": "adamw", "learning_rate": 1e-3, "weight_decay": 1e-4},
    "optax_lion": {"optax": "lion", "learning_rate": 1e-4, "weight_decay": 1e-2},
    "adamw_start": {"program": "adam_style"},
}


from optevo.dsl.library import find_program
from optevo.dsl.program import ProgramError

from ..core.configfile import ConfigError, Loc


def usage_error(msg: str):
    return ConfigError(Loc(msg.split(": ")[0]), msg.split(": ", 1)[1] if ": " in msg else msg)


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    task: str
    steps: Optional[int]
    batch_size: Optional[int]
    options: Dict
    tune_seeds: int
    eval_seeds: int
    lr_ratio: float
    lr_range: Tuple[int, int]
    wd_ratio: float
    wd_range: Tuple[int, int]
    max_extend: int

    def wd_factor(self, j: int) -> float:
        return 0.0 if j == WD_OFF else self.wd_ratio ** j

    def task_options(self) -> Dict:
        from optevo.proxy_tasks import base
        accepts = inspect.signature(base._REGISTRY[self.task]).parameters
        opts = dict(self.options)
        for k in ("steps", "batch_size"):
            if getattr(self, k) is not None and k in accepts:
                opts[k] = getattr(self, k)
        return opts

    def make_task(self):
        from optevo.proxy_tasks import get_task
        return get_task(self.task, **self.task_options())


@dataclasses.dataclass(frozen=True)
class FunnelConfig:
    stages: Tuple[Stage, ...]
    baselines: Dict[str, Dict]
    top_k: int = 3
    workers: int = 2
    address: Optional[str] = None
    pin_cores: bool = True
    reference: str = "optax_adamw"
    pass_margin_se: float = 0.0

    def to_json(self) -> Dict:
        d = dataclasses.asdict(self)
        d["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return d

    @classmethod
    def from_json(cls, d: Dict) -> "FunnelConfig":
        return config_from_dict(d, "<funnel.json>")


def _check(where: str, ok: bool, msg: str):
    if not ok:
        raise usage_error(f"{where}: {msg}")


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _stage(src: str, i: int, d, defaults: Dict) -> Stage:
    from optevo.proxy_tasks import task_names
    at = f"{src}: stages[{i}]"
    _check(at, isinstance(d, dict), "each stage is a mapping")
    allowed = {"name", "task", "steps", "batch_size", "options", *STAGE_DEFAULTS}
    for k in d:
        _check(f"{at}.{k}", k in allowed, f"unknown key; allowed: {', '.join(sorted(allowed))}")
    v = {**STAGE_DEFAULTS, **defaults, **d}
    for k in ("name", "task"):
        _check(f"{at}.{k}", isinstance(v.get(k), str) and v[k], "required string")
    _check(f"{at}.task", v["task"] in task_names(),
           f"unknown task {v['task']!r}; known: {', '.join(task_names())}")
    for k in ("steps", "batch_size"):
        _check(f"{at}.{k}", v.get(k) is None or (_int(v[k]) and v[k] >= 1),
               "an integer >= 1 or null")
    _check(f"{at}.options", isinstance(v.get("options", {}), dict), "a mapping")
    for k in ("tune_seeds", "eval_seeds"):
        _check(f"{at}.{k}", _int(v[k]) and v[k] >= 1, "an integer >= 1")
    _check(f"{at}.eval_seeds", v["eval_seeds"] % v["tune_seeds"] == 0,
           "must be a multiple of tune_seeds (eval jobs use the same batch of seeds)")
    _check(f"{at}.max_extend", _int(v["max_extend"]) and v["max_extend"] >= 0,
           "an integer >= 0")
    for axis in ("lr", "wd"):
        r, rng = v[f"{axis}_ratio"], v[f"{axis}_range"]
        _check(f"{at}.{axis}_ratio", _num(r) and r > 1, "a number > 1")
        _check(f"{at}.{axis}_range", isinstance(rng, (list, tuple)) and len(rng) == 2
               and all(_int(x) for x in rng) and rng[0] <= 0 <= rng[1],
               "two integers [lo, hi] with lo <= 0 <= hi (multipliers ratio**lo..ratio**hi)")
    st = Stage(v["name"], v["task"], v.get("steps"), v.get("batch_size"),
               dict(v.get("options") or {}), v["tune_seeds"], v["eval_seeds"],
               float(v["lr_ratio"]), tuple(v["lr_range"]), float(v["wd_ratio"]),
               tuple(v["wd_range"]), v["max_extend"])
    try:
        st.make_task()
    except (TypeError, ValueError) as e:
        raise usage_error(f"{at}: task {st.task!r} rejects its options: {e}") from None
    return st


def _baseline(src: str, name: str, d) -> Dict:
    from optevo.proxy_tasks.optax_baselines import spec_text
    at = f"{src}: baselines.{name}"
    _check(at, isinstance(d, dict) and (("optax" in d) != ("program" in d)),
           "a mapping with either 'optax: adamw|lion' (and hyperparameters) or 'program'")
    if "program" in d:
        _check(at, set(d) == {"program"}, "a program baseline takes only 'program'")
        try:
            find_program(d["program"])
        except ProgramError as e:
            raise usage_error(f"{at}.program: {e.msg}") from None
        return dict(d)
    hyper = {k: x for k, x in d.items() if k != "optax"}
    _check(at, all(_num(x) for x in hyper.values()), "hyperparameters must be numbers")
    try:
        spec_text(d["optax"], **hyper)
    except ValueError as e:
        raise usage_error(f"{at}: {e}") from None
    return dict(d)


def config_from_dict(d, src: str) -> FunnelConfig:
    _check(src, isinstance(d, dict), "the funnel config is a mapping")
    allowed = {"top_k", "workers", "address", "pin_cores", "reference", "pass_margin_se",
               "baselines", "defaults", "stages"}
    for k in d:
        _check(f"{src}: {k}", k in allowed, f"unknown key; allowed: {', '.join(sorted(allowed))}")
    defaults = d.get("defaults") or {}
    _check(f"{src}: defaults", isinstance(defaults, dict) and set(defaults) <= set(
        STAGE_DEFAULTS), f"a mapping of {', '.join(STAGE_DEFAULTS)}")
    stages = d.get("stages")
    _check(f"{src}: stages", isinstance(stages, list) and stages, "a non-empty list of stages")
    stages = tuple(_stage(src, i, s, defaults) for i, s in enumerate(stages))
    names = [s.name for s in stages]
    _check(f"{src}: stages", len(set(names)) == len(names), "stage names must be distinct")
    base = d.get("baselines", DEFAULT_BASELINES)
    _check(f"{src}: baselines", isinstance(base, dict) and base, "a non-empty mapping")
    base = {str(k): _baseline(src, str(k), v) for k, v in base.items()}
    ref = d.get("reference", "optax_adamw")
    _check(f"{src}: reference", ref in base, f"must name a baseline ({', '.join(base)})")
    for k, ok, what in [("top_k", lambda x: _int(x) and x >= 1, "an integer >= 1"),
                        ("workers", lambda x: _int(x) and x >= 0, "an integer >= 0"),
                        ("address", lambda x: x is None or isinstance(x, str), "a string"),
                        ("pin_cores", lambda x: isinstance(x, bool), "true or false"),
                        ("pass_margin_se", lambda x: _num(x) and x >= 0, "a number >= 0")]:
        if k in d:
            _check(f"{src}: {k}", ok(d[k]), what)
    kw = {k: d[k] for k in ("top_k", "workers", "address", "pin_cores", "pass_margin_se")
          if k in d}
    return FunnelConfig(stages, base, reference=ref, **kw)


def default_config_path() -> Path:
    local = Path("configs/funnel.yaml")
    if local.exists():
        return local
    from importlib import resources
    return Path(str(resources.files("optevo.configs") / "funnel.yaml"))


def load_funnel_config(path=None) -> FunnelConfig:
    path = Path(path) if path else default_config_path()
    if not path.exists():
        raise usage_error(f"{path}: no such config file")
    try:
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise usage_error(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return config_from_dict(d, str(path))


