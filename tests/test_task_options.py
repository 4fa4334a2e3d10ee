"""Task options are checked by the task's own rules (``proxy_tasks.tasks.base.Rule``), once:
the config layer applies them when a config is loaded (one line naming file, line and key,
before anything is created), the constructors and ``get_task`` apply the same ones. Options
the constructor used to reject with a traceback (``inputs``, ``schedule``, ``split_seed``,
rosenbrock ``dim``) and options with no meaning that used to be accepted (a negative
``n_val``, ``depth: -1``, ``hidden: 0``, ``cond: -1``, ``noise: .nan``, a vocabulary of one)
are both refused."""

import math

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optevo.dsl.errors import OptevoError
from optevo.proxy_tasks import get_task, task_class, task_options
from optevo.proxy_tasks.tasks import base as tasks_base
from optevo.search.cli import main
from optevo.search.core.config import ConfigError, load_config
from optevo.search.funnel.config import load_funnel_config

BUILTIN = ["digits_mlp", "text_lm", "quadratic", "rosenbrock", "binary_regression",
           "deep_linear", "diagonal_scales", "digits_cnn", "lm_transformer"]

BAD = [  # (task, option, YAML value, what the one line says after "task.options.OPTION: ")
    ("digits_mlp", "n_val", "-5", "expected an integer >= 1 and <= 1,796, got -5"),
    ("digits_mlp", "n_val", "0", "expected an integer >= 1 and <= 1,796, got 0"),
    ("digits_mlp", "depth", "-1", "expected an integer >= 0, got -1"),
    ("digits_mlp", "hidden", "0", "expected an integer >= 1, got 0"),
    ("digits_mlp", "hidden", "1.5", "expected an integer >= 1, got 1.5"),
    ("digits_mlp", "batch_size", "0", "expected an integer >= 1, got 0"),
    ("digits_mlp", "inputs", "pixels", "expected one of 'standardize', 'unit', got 'pixels'"),
    ("digits_mlp", "schedule", "bogus", "unknown lr schedule 'bogus'; use one of constant, "
                                        "cosine, warmup_cosine"),
    ("digits_mlp", "split_seed", "-1", "expected an integer >= 0 and <= 4,294,967,295, got -1"),
    ("digits_mlp", "max_abs_weight", "0", "expected a number > 0, got 0"),
    ("digits_cnn", "c1", "0", "expected an integer >= 1, got 0"),
    ("digits_cnn", "warmup", "-0.5", "expected a number >= 0, got -0.5"),
    ("quadratic", "cond", "-1", "expected a number >= 1, got -1"),
    ("quadratic", "noise", ".nan", "expected a number >= 0, got nan"),
    ("quadratic", "noise", "-.inf", "expected a number >= 0, got -inf"),
    ("quadratic", "init_scale", "0", "expected a number > 0, got 0"),
    ("quadratic", "rotate", "1", "expected true or false, got 1"),
    ("quadratic", "spike_prob", "1.5", "expected a number >= 0 and <= 1, got 1.5"),
    ("quadratic", "floor", "0.0", "expected a number > 0, got 0.0"),
    ("quadratic", "dim", "0", "expected an integer >= 1, got 0"),
    ("rosenbrock", "dim", "1", "expected an integer >= 2, got 1"),
    ("rosenbrock", "scale", "-1", "expected a number > 0, got -1"),
    ("binary_regression", "rows", "0", "expected an integer >= 1, got 0"),
    ("binary_regression", "box", "-1.0", "expected a number > 0, got -1.0"),
    ("deep_linear", "depth", "0", "expected an integer >= 1, got 0"),
    ("deep_linear", "noise", "-0.5", "expected a number >= 0, got -0.5"),
    ("diagonal_scales", "spread", "-1", "expected a number >= 0, got -1"),
    ("text_lm", "min_count", "1000000000", "a vocabulary of one: the first 200000 characters "
                                          "hold no character 1000000000 times; lower "
                                          "min_count or raise n_chars"),
    ("text_lm", "val_frac", "1.0", "expected a number > 0 and < 1, got 1.0"),
    ("text_lm", "context", "0", "expected an integer >= 1, got 0"),
    ("lm_transformer", "words", "1", "expected 0 (characters) or a vocabulary size in "
                                     "2..65536, got 1"),
    ("lm_transformer", "heads", "3", "expected a divisor of width (32), got 3"),
    ("lm_transformer", "layers", "-1", "expected an integer >= 0, got -1"),
]


def _config(tmp_path, task, options, name="c.yaml"):
    p = tmp_path / name
    p.write_text(f"workers: {{count: 0}}\ntask:\n  name: {task}\n  options:\n"
                 + "".join(f"    {k}: {v}\n" for k, v in options.items()))
    return p


@pytest.mark.parametrize("task", BUILTIN)
def test_every_option_of_every_builtin_task_has_a_rule_its_default_keeps(task):
    cls = task_class(task)
    rules = tasks_base.option_rules(cls)
    assert set(task_options(task)) <= set(rules), set(task_options(task)) - set(rules)
    defaults = {n: p.default for n, p in task_options(task).items()}
    tasks_base.check_options(cls, defaults)  # the defaults keep the rules


@pytest.mark.parametrize("task, option, value, problem", BAD,
                         ids=[f"{t}.{o}={v}" for t, o, v, _ in BAD])
def test_a_bad_option_is_one_line_naming_file_line_and_key(tmp_path, task, option, value,
                                                            problem):
    cfg = _config(tmp_path, task, {option: value})
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert str(info.value) == f"{cfg}:5: task.options.{option}: {problem}"


@pytest.mark.parametrize("options", [{"inputs": "pixels"}, {"schedule": "bogus"},
                                     {"split_seed": -1}, {"n_val": -5}])
def test_search_check_refuses_them_in_one_line_and_creates_nothing(tmp_path, capsys, options):
    """These crashed ``--check`` with a traceback (the first three) or passed (n_val)."""
    cfg = _config(tmp_path, "digits_mlp", options)
    assert main(["search", str(cfg), "--check", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"optevo: error: {cfg}:5: task.options.") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_rosenbrock_dim_and_a_suite_member_are_checked_too(tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("workers: {count: 0}\ntask:\n  - name: quadratic\n    options: {dim: 4}\n"
                   "  - name: rosenbrock\n    options:\n      dim: 1\n")
    assert main(["search", str(cfg), "--check"]) == 2
    assert capsys.readouterr().err == (f"optevo: error: {cfg}:7: task[1].options.dim: expected "
                                       "an integer >= 2, got 1\n")


def test_what_the_text_decides_is_checked_when_the_config_is_loaded(tmp_path):
    cfg = _config(tmp_path, "text_lm", {"n_chars": 20, "min_count": 1})
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert str(info.value) == (f"{cfg}:5: task.options.n_chars: corpus too short for the "
                               "context length (8): raise n_chars or val_frac, or lower context")


@pytest.mark.parametrize("task, options, option", [
    ("digits_mlp", {"hidden": 0}, "hidden"), ("digits_mlp", {"n_val": -5}, "n_val"),
    ("quadratic", {"noise": math.nan}, "noise"), ("rosenbrock", {"dim": 1}, "dim"),
    ("lm_transformer", {"width": 10, "heads": 3}, "heads"),
    ("digits_cnn", {"schedule": {"kind": "warmup_cosine", "warmup": -1}}, "schedule"),
    ("text_lm", {"min_count": 10 ** 9}, "min_count")])
def test_constructors_apply_the_same_rules(task, options, option):
    """The class itself, not only get_task: one rule, two callers."""
    for build in (lambda: task_class(task)(**options), lambda: get_task(task, **options)):
        with pytest.raises(tasks_base.TaskOptionError) as info:
            build()
        e = info.value
        assert isinstance(e, OptevoError) and isinstance(e, ValueError) and e.option == option
        assert str(e).startswith(f"task {task}: option {option}: ") and "\n" not in str(e)


def test_values_at_the_bounds_build():
    t = get_task("digits_mlp", n_val=1796, depth=0, hidden=np.int64(3), split_seed=2**32 - 1)
    assert (t.n_train, t.n_val, t.sizes) == (1, 1796, [64, 10])
    q = get_task("quadratic", dim=3, cond=1, spike_prob=1.0, noise=0, rotate=False)
    assert np.allclose(np.asarray(q.eigenvalues), 10.0)
    assert get_task("binary_regression", batch_size=0, init_scale=0.0).batch_size == 0
    assert get_task("lm_transformer", words=2, width=6, heads=3, layers=0).vocab_size == 2


def test_an_unknown_option_or_a_size_too_large_to_build_is_one_line():
    with pytest.raises(tasks_base.TaskOptionError, match="option hiden: unknown option; "
                                                         "allowed: steps, batch_size, hidden"):
        get_task("digits_mlp", hiden=3)
    with pytest.raises(tasks_base.TaskError, match=r"^task quadratic: cannot be built with "
                                                   r"these options \(MemoryError: "):
        get_task("quadratic", dim=10 ** 13)


def test_search_check_of_a_size_too_large_to_build_is_one_line(tmp_path, capsys):
    cfg = _config(tmp_path, "quadratic", {"dim": 10 ** 13})
    assert main(["search", str(cfg), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optevo: error: task quadratic: cannot be built") and \
        err.count("\n") == 1


def test_a_plugin_task_gets_the_rules_of_its_defaults_types_and_its_own(tmp_path):
    @tasks_base.register("lab_options_task")
    class Lab(tasks_base.Task):
        OPTIONS = {"width": tasks_base.Rule(int, ge=2)}

        def __init__(self, width: int = 4, scale: float = 1.0, kind: str = "a",
                     flag: bool = True, extra=None):
            self.width = width

    try:
        for options, line in [({"width": 1}, "width: expected an integer >= 2, got 1"),
                              ({"scale": ".nan"}, "scale: expected a number, got nan"),
                              ({"flag": "1"}, "flag: expected true or false, got 1"),
                              ({"kind": "3"}, "kind: expected a string, got 3")]:
            cfg = _config(tmp_path, "lab_options_task", options)
            with pytest.raises(ConfigError) as info:
                load_config(cfg)
            assert str(info.value) == f"{cfg}:5: task.options.{line}"
        cfg = _config(tmp_path, "lab_options_task", {"width": 3, "extra": "anything"})
        assert load_config(cfg).task.options == {"width": 3, "extra": "anything"}
    finally:
        tasks_base._REGISTRY.pop("lab_options_task", None)


FUNNEL = """workers: 0
stages:
  - name: a
    task: {task}
    steps: 10
    batch_size: 4
    options: {{{options}}}
"""


@pytest.mark.parametrize("task, options, message", [
    ("digits_mlp", "depth: -1", "stages[0].options.depth: expected an integer >= 0, got -1"),
    ("quadratic", "noise: .nan", "stages[0].options.noise: expected a number >= 0, got nan"),
    ("lm_transformer", "heads: 3", "stages[0].options.heads: expected a divisor of width (32), "
                                   "got 3")])
def test_funnel_stage_options_keep_the_same_rules(tmp_path, task, options, message):
    p = tmp_path / "f.yaml"
    p.write_text(FUNNEL.format(task=task, options=options))
    with pytest.raises(ConfigError) as info:
        load_funnel_config(p)
    assert str(info.value) == f"{p}:7: {message}"


OPTION_VALUES = (st.integers(-3, 40) | st.booleans() | st.sampled_from(
    [math.nan, math.inf, -0.5, 0.0, 0.25, 1.0, 1.5, 3.0, 1e6, "unit", "standardize", "cosine",
     "constant", "warmup_cosine", "x", ""]))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_options_the_config_accepts_always_build_and_run(tmp_path_factory, data):
    """Whatever the config layer accepts builds and runs one step abstractly (check_task);
    whatever it refuses is one line naming the option."""
    task = data.draw(st.sampled_from(["digits_mlp", "quadratic", "rosenbrock",
                                      "binary_regression"]))
    names = sorted(set(task_options(task)) - {"steps", "seeds"})
    options = data.draw(st.dictionaries(st.sampled_from(names), OPTION_VALUES, max_size=3))
    cfg = tmp_path_factory.mktemp("opt") / "c.yaml"
    cfg.write_text(yaml.safe_dump({"task": {"name": task, "options": options}}))
    try:
        loaded = load_config(cfg)
    except ConfigError as e:
        assert "\n" not in str(e) and e.key and e.key.startswith("task.options.")
        return
    tasks_base.check_task(get_task(task, **loaded.task.options))
