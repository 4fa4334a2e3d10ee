"""Plugins: a mutation registered from Python before the config is loaded is enabled from the
config and used by the search; the config still rejects names nobody registered."""

import pytest

from optevo.search.core import mutations
from optevo.search.core.config import MUTATIONS, ConfigError, config_from_dict
from optevo.search.core.run import build_search
from optevo.search.core.workers import InProcessPool, eval_spec

BUILT_IN = ["insert", "delete", "change_arg", "scale_const", "wrap", "ema", "decay"]
ON = {"insert": 1.0, "delete": 1.0, "change_arg": 1.0, "scale_const": 1.0, "wrap": 0.0,
      "ema": 0.0, "decay": 0.0}
TINY = {
    "seed": 3,
    "task": {"name": "digits_mlp", "steps": 25, "seeds": 2,
             "options": {"hidden": 8, "batch_size": 16}},
    "search": {"population": 8, "tournament": 3, "max_evals": 6, "max_length": 16,
               "mutations": {"my_mutation": 1.0, "insert": 0, "delete": 0, "change_arg": 0,
                             "scale_const": 0}},
    "workers": {"count": 0},
    "progress": {"enabled": False},
}


@pytest.fixture
def my_mutation():
    """``my_mutation`` registered for one test (after the config module was imported),
    unregistered afterwards so that other tests see only the built-ins."""
    calls = []

    @mutations.register_mutation("my_mutation")
    def my_mutation(rng, program):
        calls.append(program)
        return mutations.insert(rng, program)  # a real edit, under another name

    yield calls
    mutations.unregister_mutation("my_mutation")
    assert list(MUTATIONS) == BUILT_IN


def test_registered_mutation_is_off_by_default_and_enabled_from_the_config(my_mutation):
    assert list(MUTATIONS) == BUILT_IN + ["my_mutation"]  # the config's view is live
    default = config_from_dict({})
    assert default.search.mutations == {**ON, "my_mutation": 0.0}
    cfg = config_from_dict(TINY)
    assert cfg.search.mutations == {**dict.fromkeys(BUILT_IN, 0.0), "my_mutation": 1.0}
    with pytest.raises(ConfigError, match=r"unknown key 'search.mutations.my_mutaton'; "
                       r"allowed: insert, .*my_mutation \(did you mean my_mutation\?\)"):
        config_from_dict({"search": {"mutations": {"my_mutaton": 1}}})


def test_search_uses_the_registered_mutation(tmp_path, my_mutation):
    cfg = config_from_dict(TINY)
    search = build_search(cfg, tmp_path / "run", InProcessPool(eval_spec(cfg)))
    records = search.run().rundir.records()
    children = [r for r in records if r.parent is not None]
    assert len(records) >= 6 and children and my_mutation
    assert {r.mutation for r in children} == {"my_mutation"}


def test_unknown_mutation_without_the_plugin():
    assert list(MUTATIONS) == BUILT_IN
    with pytest.raises(ConfigError, match=r"^<dict>: unknown key 'search.mutations.my_mutation'; "
                       r"allowed: insert, delete, change_arg, scale_const, wrap, ema, decay$"):
        config_from_dict({"search": {"mutations": {"my_mutation": 1}}})
    with pytest.raises(ConfigError, match=r"\(did you mean insert\?\)"):
        config_from_dict({"search": {"mutations": {"insrt": 1}}})


def _forget_task(name):
    """A finalizer that unregisters task ``name`` (and its plugin module): other tests see
    only the built-in tasks."""
    def forget():
        import sys
        from optevo.proxy_tasks import base
        base._REGISTRY.pop(name, None)
        for mod in [m for m in sys.modules if m.startswith("optevo_plugin_lab_tasks")]:
            del sys.modules[mod]
    return forget


def test_plugins_key_imports_a_task_module_before_validation(tmp_path, request):
    """``plugins:`` in a config (and ``--import``) is imported before the task name is
    checked; a bad entry is one line naming the file, line and key."""
    from optevo.search.core.config import load_config
    (tmp_path / "lab_tasks.py").write_text(
        "from optevo.proxy_tasks import register\n"
        "from optevo.proxy_tasks.tasks.synthetic import Quadratic\n"
        "@register('lab_quadratic')\n"
        "class LabQuadratic(Quadratic):\n"
        "    pass\n")
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"plugins: [{tmp_path / 'lab_tasks.py'}]\ntask: {{name: lab_quadratic}}\n")
    request.addfinalizer(_forget_task("lab_quadratic"))
    cfg = load_config(cfg_path)
    assert cfg.task.name == "lab_quadratic" and cfg.plugins == [str(tmp_path / "lab_tasks.py")]
    spec = eval_spec(cfg)  # what Ray workers receive: the file, resolved
    assert spec.plugins[0].file == str(tmp_path / "lab_tasks.py")
    cfg_path.write_text("seed: 1\nplugins: lab_tasks\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: plugins: expected a list of module "):
        load_config(cfg_path)
    cfg_path.write_text("seed: 1\nplugins: [no_such_module_xyz]\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: plugins: plugin no_such_module_xyz: no "
                                          r"module named 'no_such_module_xyz'"):
        load_config(cfg_path)
