"""Search configs: defaults, presets, one-line errors naming file, line and key, overrides."""

from pathlib import Path
from textwrap import dedent

import pytest
import yaml

from optevo.proxy_tasks import task_names
from optevo.search.core.config import (DEFAULTS, MUTATIONS, Config, ConfigError, config_from_dict,
                                  config_to_dict, describe_schema, dump_config, load_config,
                                  schema_rows)

ROOT = Path(__file__).resolve().parents[1]
PRESETS = [ROOT / "configs" / "quick.yaml", ROOT / "configs" / "search.yaml"]


def write(tmp_path, text, name="x.yaml"):
    p = tmp_path / name
    p.write_text(dedent(text).lstrip("\n"))
    return p


def error(path, overrides=None, sources=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides, sources)
    msg = str(info.value)
    assert "\n" not in msg and msg.strip() == msg
    return info.value


def expect(tmp_path, text, line, *parts):
    """Loading ``text`` fails at ``line`` with a message containing every one of ``parts``."""
    p = write(tmp_path, text)
    e = error(p)
    msg = str(e)
    assert msg.startswith(f"{p}:{line}: "), msg
    assert e.line == line and e.source == str(p)
    for part in parts:
        assert part in msg, (part, msg)
    return msg


# --- defaults and presets -------------------------------------------------------------------


def test_defaults():
    d = DEFAULTS
    assert (d.seed, d.name) == (0, None)
    assert (d.task.name, d.task.steps, d.task.seeds, d.task.options) == ("digits_mlp", None, 4, {})
    s = d.search
    assert (s.population, s.tournament, s.max_evals, s.time_limit, s.start) == \
        (100, 10, 2000, None, "adam_style")
    assert (s.max_length, s.restart_after, s.max_mutation_tries) == (32, None, 100)
    # the paper's four mutations; wrap (x = op(x)), ema and decay are registered but off
    assert s.mutations == {m: 0.0 if m in ("wrap", "ema", "decay") else 1.0 for m in MUTATIONS}
    assert (d.workers.count, d.workers.address, d.workers.batch, d.workers.pin_cores) == \
        (2, None, 4, True)
    assert (d.holdout.top_k, d.holdout.seeds) == (5, 8)
    assert d.checkpoint.every_seconds == 30.0 and d.progress.enabled is True
    with pytest.raises(AttributeError):
        d.search.population = 3  # frozen


def test_empty_file_and_missing_sections_take_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "", name="my-run.yaml"))
    assert cfg == Config(name="my-run")
    cfg = load_config(write(tmp_path, "search:\n  population: 17\nworkers:\n"))
    assert cfg.search.population == 17 and cfg.search.tournament == 10
    assert cfg.workers == DEFAULTS.workers and cfg.name == "x"


def test_float_keys_accept_ints_and_mutations_merge(tmp_path):
    cfg = load_config(write(tmp_path, """
        search: {time_limit: 5, mutations: {delete: 0}}
        checkpoint: {every_seconds: 2}
    """))
    assert cfg.search.time_limit == 5.0 and isinstance(cfg.search.time_limit, float)
    assert cfg.checkpoint.every_seconds == 2.0 and isinstance(cfg.checkpoint.every_seconds, float)
    assert cfg.search.mutations == {"insert": 1.0, "delete": 0.0, "change_arg": 1.0,
                                    "scale_const": 1.0, "wrap": 0.0, "ema": 0.0,
                                    "decay": 0.0}


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_presets_load(path):
    cfg = load_config(path)
    # the full preset's task was chosen by scripts/experiments/proxy_fidelity_ladder.py
    expected = {"quick": "digits_mlp", "search": "digits_mlp"}[path.stem]
    assert cfg.name == path.stem and cfg.task.name == expected
    text = path.read_text()
    for line in text.splitlines():  # every key is commented
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, line


def test_preset_values():
    """The presets load to exactly what their files say (defaults only where they say
    nothing), and the quick preset is the small one."""
    for path in PRESETS:
        raw = yaml.safe_load(open(path))
        cfg = config_to_dict(load_config(path))
        for section, values in raw.items():
            if isinstance(values, dict):
                for k, v in values.items():
                    assert cfg[section][k] == v, (path, section, k)
            elif values is not None:
                assert cfg[section] == values, (path, section)
    quick, full = (load_config(p) for p in PRESETS)
    assert quick.search.max_evals < full.search.max_evals
    assert quick.search.time_limit is not None and quick.search.population < full.search.population


# --- errors: one line, file, line, key ------------------------------------------------------


@pytest.mark.parametrize("text,line,key,hint", [
    ("seed: 1\nsed: 2\n", 2, "'sed'", "did you mean seed?"),
    ("search:\n  population: 20\n  tournamnet: 3\n", 3, "'search.tournamnet'",
     "did you mean tournament?"),
    ("task:\n  nmae: digits_mlp\n", 2, "'task.nmae'", "did you mean name?"),
    ("workers:\n  cont: 1\n", 2, "'workers.cont'", "did you mean count?"),
    ("holdout:\n  topk: 1\n", 2, "'holdout.topk'", "did you mean top_k?"),
    ("checkpoint:\n  every_second: 1\n", 2, "'checkpoint.every_second'",
     "did you mean every_seconds?"),
    ("progress:\n  enable: false\n", 2, "'progress.enable'", "did you mean enabled?"),
    ("serch:\n  population: 3\n", 1, "'serch'", "did you mean search?"),
    ("search:\n  mutations:\n    insrt: 1\n", 3, "'search.mutations.insrt'",
     "did you mean insert?"),
    ("population: 3\n", 1, "'population'", "did you mean search.population?"),
])
def test_unknown_keys(tmp_path, text, line, key, hint):
    msg = expect(tmp_path, text, line, f"unknown key {key}", "allowed: ", hint)
    if key == "'search.tournamnet'":
        assert "allowed: population, tournament, max_evals" in msg


@pytest.mark.parametrize("text,line,key,got", [
    ("search:\n  population: 20\n  tournament: ten\n", 3, "search.tournament: expected an "
     "integer >= 1", "got 'ten'"),
    ("seed: true\n", 1, "seed: expected an integer >= 0", "got true"),
    ("seed: 2.5\n", 1, "seed: expected an integer", "got 2.5"),
    ("seed: 2.0\n", 1, "seed: expected an integer", "got 2.0"),
    ("seed: '2'\n", 1, "seed: expected an integer", "got '2'"),
    ("task:\n  steps: [1, 2]\n", 2, "task.steps: expected an integer >= 1 and <= 10,000,000 or null", "got a list"),
    ("search:\n  time_limit: soon\n", 2, "search.time_limit: expected a number > 0 or null",
     "got 'soon'"),
    ("search:\n  time_limit: .inf\n", 2, "search.time_limit: expected a number", "got inf"),
    ("checkpoint:\n  every_seconds: false\n", 2, "checkpoint.every_seconds: expected a number",
     "got false"),
    ("progress:\n  enabled: 1\n", 2, "progress.enabled: expected true or false", "got 1"),
    ("workers:\n  pin_cores: 'yes'\n", 2, "workers.pin_cores: expected true or false",
     "got 'yes'"),
    ("workers:\n  address: 5\n", 2, "workers.address: expected a non-empty string or null",
     "got 5"),
    ("search:\n  start: 3\n", 2, "search.start: expected a non-empty string", "got 3"),
    ("search:\n  mutations: [insert]\n", 2, "search.mutations: expected a mapping", "got a list"),
    ("search:\n  mutations:\n    delete: x\n", 3, "search.mutations.delete: expected a number "
     ">= 0", "got 'x'"),
    ("task:\n  options: 3\n", 2, "task.options: expected a mapping", "got 3"),
    ("task:\n  options:\n    hidden: [1]\n", 3, "task.options.hidden: expected a number",
     "got a list"),
    ("search: 5\n", 1, "search: expected a mapping of search keys (population, ", "got 5"),
    ("name: 'my run'\n", 1, "name: expected a name of letters", "got 'my run'"),
    ("task:\n  seeds: null\n", 2, "task.seeds: expected an integer >= 1", "got null"),
])
def test_wrong_types(tmp_path, text, line, key, got):
    expect(tmp_path, text, line, key, got)


@pytest.mark.parametrize("text,line,key,got", [
    ("seed: -1\n", 1, "seed: expected an integer >= 0", "got -1"),
    ("search:\n  population: 1\n  tournament: 1\n", 2, "search.population: expected an "
     "integer >= 2", "got 1"),
    ("search:\n  tournament: 0\n", 2, "search.tournament: expected an integer >= 1", "got 0"),
    ("search:\n  max_evals: 0\n", 2, "search.max_evals: expected an integer >= 1 or null",
     "got 0"),
    ("search:\n  time_limit: 0\n", 2, "search.time_limit: expected a number > 0 or null",
     "got 0.0"),
    ("task:\n  seeds: 0\n", 2, "task.seeds: expected an integer >= 1", "got 0"),
    ("workers:\n  count: -1\n", 2, "workers.count: expected an integer >= 0", "got -1"),
    ("holdout:\n  seeds: 1\n", 2, "holdout.seeds: expected an integer >= 2", "got 1"),
    ("checkpoint:\n  every_seconds: -3\n", 2, "checkpoint.every_seconds: expected a number > 0",
     "got -3.0"),
    ("search:\n  mutations:\n    insert: -1\n", 3, "search.mutations.insert: expected a "
     "number >= 0", "got -1"),
])
def test_out_of_range(tmp_path, text, line, key, got):
    expect(tmp_path, text, line, key, got)


def test_unknown_task_lists_known_names(tmp_path):
    msg = expect(tmp_path, "seed: 1\ntask:\n  name: digits\n", 3, "task.name: expected one of",
                 "got 'digits'", "did you mean digits_mlp?")
    assert ", ".join(task_names()) in msg


def test_unknown_start_program(tmp_path):
    msg = expect(tmp_path, "search:\n  start: adam_styl\n", 2, "search.start:",
                 "library program", "did you mean adam_style?")
    assert "lion" in msg
    prog = tmp_path / "p.py"
    prog.write_text((ROOT / "configs" / "programs" / "lion.py").read_text())
    assert load_config(write(tmp_path, f"search:\n  start: {prog}\n")).search.start == str(prog)


def test_task_options_checked_against_the_task(tmp_path):
    cfg = load_config(write(tmp_path, "task:\n  options: {hidden: 16, schedule: constant}\n"))
    assert cfg.task.options == {"hidden": 16, "schedule": "constant"}
    expect(tmp_path, "task:\n  options:\n    hiden: 16\n", 3, "task.options.hiden:",
           "unknown option 'hiden' of task digits_mlp", "did you mean hidden?")
    expect(tmp_path, "task:\n  options:\n    hidden: 1.5\n", 3, "task.options.hidden:",
           "expected an integer", "got 1.5")
    expect(tmp_path, "task:\n  options:\n    steps: 10\n", 3, "task.options.steps:",
           "set task.steps instead")


def test_tournament_larger_than_population(tmp_path):
    expect(tmp_path, "search:\n  population: 8\n  tournament: 9\n", 3,
           "search.tournament: expected an integer <= search.population (8)", "got 9")
    # tournament left at its default (10): the error points at population's line
    expect(tmp_path, "seed: 0\nsearch:\n  population: 5\n", 3, "search.tournament:",
           "search.population (5)", "got 10")


def test_all_mutation_weights_zero(tmp_path):
    expect(tmp_path, """
        search:
          mutations: {insert: 0, delete: 0,
                      change_arg: 0.0, scale_const: 0}
    """, 2, "search.mutations: at least one weight must be > 0")


def test_duplicate_key(tmp_path):
    expect(tmp_path, "search:\n  population: 5\n  population: 6\n", 3,
           "duplicate key 'search.population' (first at line 2)")


@pytest.mark.parametrize("text,line,parts", [
    ("search:\n  population: 5\n tournament: 3\n", 3, ["YAML syntax error"]),
    ("seed: [1, 2\n", 2, ["YAML syntax error"]),
    ("a: b: c\n", 1, ["YAML syntax error", "mapping values are not allowed here"]),
    ("seed: 1\n---\nseed: 2\n", 2, ["YAML syntax error", "single document"]),
    ("- seed\n- 1\n", 1, ["top level must be a mapping", "seed, name, task", "got a list"]),
    ("just text\n", 1, ["top level must be a mapping", "got 'just text'"]),
])
def test_bad_yaml(tmp_path, text, line, parts):
    expect(tmp_path, text, line, *parts)


def test_unreadable_files(tmp_path):
    missing = tmp_path / "nope.yaml"
    e = error(missing)
    assert str(e) == f"{missing}: no such file" and e.line is None
    assert str(error(tmp_path)) == f"{tmp_path}: is a directory, not a config file"
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"seed: \xff\xfe\n")
    assert str(error(bad)) == f"{bad}: not a UTF-8 text file"


# --- overrides ------------------------------------------------------------------------------


def test_overrides(tmp_path):
    p = PRESETS[0]
    cfg = load_config(p, {"seed": 3, "search.max_evals": 50, "workers.count": 0,
                          "search.mutations.insert": 2, "task.options.hidden": 8,
                          "search.time_limit": None, "name": "smoke"})
    assert (cfg.seed, cfg.search.max_evals, cfg.workers.count, cfg.name) == (3, 50, 0, "smoke")
    assert cfg.search.mutations["insert"] == 2.0 and cfg.search.mutations["delete"] == 1.0
    assert cfg.task.options == {"hidden": 8} and cfg.search.time_limit is None
    assert cfg.search.population == 24  # untouched keys keep the file's values
    # strings from ``--set key=value`` are read as YAML scalars for non-string keys
    cfg = load_config(p, {"search.population": "50", "progress.enabled": "false",
                          "workers.address": "null", "search.restart_after": "null",
                          "search.start": "lion"})
    assert cfg.search.population == 50 and cfg.progress.enabled is False
    assert cfg.workers.address is None and cfg.search.restart_after is None
    assert cfg.search.start == "lion"
    # a mapping override merges into the file's mapping
    cfg = load_config(p, {"search": {"population": 30, "mutations": {"delete": 0}}})
    assert cfg.search.population == 30 and cfg.search.tournament == 6
    assert cfg.search.mutations["delete"] == 0.0 and cfg.search.mutations["insert"] == 1.0


def test_overrides_are_validated(tmp_path):
    p = PRESETS[0]
    e = error(p, {"search.max_evals": 0}, {"search.max_evals": "--max-evals"})
    assert str(e) == "--max-evals: search.max_evals: expected an integer >= 1 or null, got 0"
    e = error(p, {"search.max_evals": "many"})
    assert str(e) == "override: search.max_evals: expected an integer >= 1 or null, got 'many'"
    e = error(p, {"search.popluation": 5}, {"search.popluation": "--set"})
    assert str(e).startswith("--set: unknown key 'search.popluation'; allowed: population, ")
    assert "did you mean population?" in str(e)
    e = error(p, {"seed.x": 1})
    assert "unknown key 'seed.x'" in str(e)
    e = error(p, {"task.name": "nope"}, {"task.name": "--task"})
    assert str(e).startswith("--task: task.name: expected one of ")
    # cross-field: the override's label when it caused the clash, else the file's line
    e = error(p, {"search.tournament": 99}, {"search.tournament": "--tournament"})
    assert str(e).startswith("--tournament: search.tournament: expected an integer <= ")
    e = error(p, {"search.population": 4})
    assert str(e).startswith(f"{p}:16: search.tournament: ")  # tournament: 6 is on line 16


# --- round trips ----------------------------------------------------------------------------


def test_config_to_dict_round_trips():
    for cfg in [load_config(p) for p in PRESETS] + [DEFAULTS]:
        d = config_to_dict(cfg)
        assert yaml.safe_load(yaml.safe_dump(d)) == d  # plain data
        assert list(d) == ["plugins", "seed", "name", "task", "search", "workers", "holdout",
                           "checkpoint", "progress"]
        back = config_from_dict(d)
        assert back == (cfg if cfg.name else Config(name="run"))


def test_config_from_dict_errors_name_the_source():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"search": {"population": "x"}}, source="run/config.yaml")
    assert str(info.value) == ("run/config.yaml: search.population: expected an integer >= 2 "
                               "and <= 1,000,000, got 'x'")
    with pytest.raises(ConfigError, match=r"^<dict>: unknown key 'bogus'"):
        config_from_dict({"bogus": 1})
    assert config_from_dict({}, source="runs/abc.yaml").name == "abc"


def test_dump_config_loads_back_equal(tmp_path):
    cfg = load_config(PRESETS[0], {"seed": 7, "task.options.hidden": 8, "search.time_limit": 1.5})
    out = tmp_path / "run" / "config.yaml"
    dump_config(cfg, out)
    assert load_config(out) == cfg
    assert yaml.safe_load(out.read_text())["search"]["time_limit"] == 1.5


def test_describe_schema_lists_every_key():
    table = describe_schema()
    rows = table.strip().splitlines()
    assert rows[0] == "| key | type | default | meaning |"
    keys = [k for k, _ in schema_rows()]
    assert len(rows) == 2 + len(keys) and len(keys) == 37
    for k, spec in schema_rows():
        assert f"| `{k}` |" in table and spec.doc
    assert "| `search.population` | int >= 2 and <= 1,000,000 | `100` |" in table


def test_anchors_and_aliases_are_refused_at_once(tmp_path):
    """A 'billion laughs' config fails on its first anchor, before anything is built."""
    import time
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    t0 = time.perf_counter()
    expect(tmp_path, "\n".join(lines) + "\n", 1, "YAML anchors and aliases", "not supported")
    assert time.perf_counter() - t0 < 1.0
    expect(tmp_path, "seed: 1\nname: *x\n", 2, "YAML anchors and aliases")


def test_node_count_is_bounded(tmp_path, monkeypatch):
    from optevo.search.core import yaml_config
    monkeypatch.setattr(yaml_config, "MAX_NODES", 10)
    expect(tmp_path, "task:\n  options: {" + ", ".join(f"o{i}: {i}" for i in range(9)) + "}\n",
           2, "too large: more than 10 YAML nodes")


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "{cfg}:4: task.options.batch_size: expected an integer >= 1, got 0"),
    ({"batch_size": -4}, "{cfg}:4: task.options.batch_size: expected an integer >= 1, got -4")])
def test_task_options_are_checked_before_a_run_creates_anything(tmp_path, capsys, options,
                                                                message):
    """A task that cannot run with its options is one line (exit 2) before the run directory
    exists (it used to fail after the calibration, or with a traceback)."""
    from optevo.search.cli import main
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"task": {"name": "digits_mlp", "options": options},
                                   "workers": {"count": 0}}))
    for extra in ([], ["--check"]):
        assert main(["search", str(cfg), "--run-dir", str(tmp_path / "run"), *extra]) == 2
        assert capsys.readouterr().err == f"optevo: error: {message.format(cfg=cfg)}\n"
        assert not (tmp_path / "run").exists()
