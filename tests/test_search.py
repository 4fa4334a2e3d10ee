"""Regularized evolution: mutations, population, determinism and resume (in-process)."""

import collections
import json
import math

import numpy as np
import pytest

from optevo.dsl import parse
from optevo.dsl.canon import program_hash
from optevo.dsl.library import start_program
from optevo.search.core.config import config_from_dict
from optevo.search.core.run import build_search
from optevo.search.core.mutations import MUTATIONS, MutationFailed, mutate
from optevo.search.core.population import Member, Population
from optevo.search.core.rundir import RunDir, RunDirError
from optevo.search.core.workers import InProcessPool, eval_spec

START = start_program()
START_HASH = program_hash(START)


def test_each_mutation_changes_one_thing_and_never_the_return():
    rng = np.random.default_rng(0)
    for name, fn in MUTATIONS.items():
        if name == "ema":  # no free state slot in the AdamW start: tests/test_ema_mutation.py
            continue
        for _ in range(50):
            child = fn(rng, START)
            assert child.returns == START.returns
            n0, n1 = len(START.stmts), len(child.stmts)
            if name == "insert":
                assert n1 == n0 + 1
            elif name == "wrap":  # x = op(x) right after a statement that assigns x
                assert n1 == n0 + 1
                i = next((i for i, (a, b) in enumerate(zip(START.stmts, child.stmts)) if a != b), n0)
                new, before = child.stmts[i], child.stmts[i - 1]
                assert new.args == (new.target,) and before.target == new.target
                assert child.stmts[:i] + child.stmts[i + 1:] == START.stmts
            elif name == "delete":
                assert n1 == n0 - 1
            else:
                assert n1 == n0
                diff = [i for i, (a, b) in enumerate(zip(START.stmts, child.stmts)) if a != b]
                assert len(diff) <= 1
                if name == "scale_const" and diff:
                    (i,) = diff
                    a = [x for x in START.stmts[i].args if not isinstance(x, str)]
                    b = [x for x in child.stmts[i].args if not isinstance(x, str)]
                    ratios = [y / x for x, y in zip(a, b) if x != y]
                    assert len(ratios) == 1 and ratios[0] > 0


def test_mutate_returns_a_valid_different_child_and_counts_rejections():
    rng = np.random.default_rng(1)
    rejected = collections.Counter()
    weights = {"insert": 1, "delete": 1, "change_arg": 1, "scale_const": 1}
    for _ in range(200):
        res = mutate(rng, START, START_HASH, weights, program_hash, 32, 100, rejected)
        assert res.hash != START_HASH and res.hash == program_hash(res.child)
        assert len(res.child.stmts) <= 32
    # deleting or editing dead code, or undefined variables, happen often from AdamW
    assert rejected["same_hash"] > 0 and rejected["invalid"] > 0
    with pytest.raises(MutationFailed):
        mutate(rng, START, START_HASH, {"insert": 1}, program_hash, len(START.stmts), 5)
    one = parse("def train(w, g, m, v, lr):\n  update = w * 0.5\n  return update, m, v\n")
    rej = collections.Counter()
    for _ in range(20):  # deleting the only statement leaves `update` undefined
        mutate(rng, one, program_hash(one), {"delete": 1, "scale_const": 1}, program_hash,
               8, 200, rej)
    assert rej["invalid"] > 0
    bare = parse("def train(w, g, m, v, lr):\n  update = w * lr\n  return update, m, v\n")
    rej = collections.Counter()
    with pytest.raises(MutationFailed):
        mutate(rng, bare, program_hash(bare), {"scale_const": 1}, program_hash, 8, 7, rej)
    assert rej == {"no_site": 7}


def test_tournament_ignores_non_finite_and_oldest_leaves():
    pop = Population(4)
    for i, loss in enumerate([math.inf, 0.5, math.nan, 0.7]):
        pop.add(Member(i, None, None, str(i), "", loss, loss))
    rng = np.random.default_rng(0)
    winners = {pop.tournament(rng, 2).id for _ in range(200)}
    assert winners <= {1, 3} and 1 in winners
    old = pop.add(Member(9, None, None, "9", "", 0.1, 0.1))
    assert old.id == 0 and [m.id for m in pop.members] == [1, 2, 3, 9]
    assert pop.best().id == 9


TINY = {
    "seed": 3,
    "task": {"name": "digits_mlp", "steps": 25, "seeds": 2,
             "options": {"hidden": 8, "batch_size": 16}},
    "search": {"population": 8, "tournament": 3, "max_evals": 24, "max_length": 16},
    "workers": {"count": 0, "batch": 3},
    "holdout": {"top_k": 2, "seeds": 2, "baselines": []},  # (their re-check: test_api)
    "checkpoint": {"every_seconds": 0.5},
    "progress": {"enabled": False},
}


@pytest.fixture(scope="module")
def pool():
    cfg = config_from_dict(TINY)
    return InProcessPool(eval_spec(cfg))


def _search(tmp_path, pool, name, **over):
    d = json.loads(json.dumps(TINY))
    for k, v in over.items():
        sec, key = k.split(".")
        d[sec][key] = v
    cfg = config_from_dict(d)
    return build_search(cfg, tmp_path / name, pool)


def _strip_times(records):
    return [{k: v for k, v in r.to_json().items() if k not in ("time", "seconds")}
            for r in records]


def test_same_seed_in_process_gives_identical_log(tmp_path, pool):
    a = _search(tmp_path, pool, "a").run()
    b = _search(tmp_path, pool, "b").run()
    ra, rb = a.rundir.records(), b.rundir.records()
    assert len(ra) >= 24
    assert _strip_times(ra) == _strip_times(rb)
    c = _search(tmp_path, pool, "c", **{"search.population": 9}).run()
    assert _strip_times(c.rundir.records()) != _strip_times(ra)
    # the log holds every trained child once, each with its parent logged before it
    ids = [r.id for r in ra]
    assert len(ids) == len(set(ids))
    seen = set()
    for r in ra:
        assert r.parent is None or r.parent in seen
        seen.add(r.id)
    assert sum(not r.cached for r in ra) == 24


def test_resume_continues_a_finished_run_without_duplicates(tmp_path, pool):
    s = _search(tmp_path, pool, "r").run()
    n = len(s.rundir.records())
    more = _search(tmp_path, pool, "r", **{"search.max_evals": 36})
    more.run(resume=True)
    recs = more.rundir.records()
    ids = [r.id for r in recs]
    assert len(ids) == len(set(ids)) and len(recs) > n
    assert sum(not r.cached for r in recs) == 36
    state = RunDir(tmp_path / "r").read_checkpoint()
    assert state["n_trained"] == 36 and state["log_lines"] == len(recs)


def test_resume_replays_log_lines_newer_than_the_checkpoint(tmp_path, pool):
    """A driver killed after logging children but before its next checkpoint: resume
    replays those lines, rebuilding exactly the population and cache it had."""
    _search(tmp_path, pool, "k", **{"search.max_evals": 12}).run()
    run = RunDir(tmp_path / "k")
    state12 = run.read_checkpoint()
    _search(tmp_path, pool, "k", **{"search.max_evals": 24}).run(resume=True)
    state24 = run.read_checkpoint()
    recs = run.records()
    assert state24["log_lines"] == len(recs) > state12["log_lines"]
    # the kill: the log holds 24 trained children, the checkpoint only the first 12
    run.write_checkpoint(state12)
    with open(run.file("evaluations.jsonl"), "a") as f:
        f.write('{"id": 99999, "trunc')  # and a line torn by the kill
    _search(tmp_path, pool, "k", **{"search.max_evals": 24}).run(resume=True)
    replayed = run.read_checkpoint()
    for key in ("population", "n_trained", "n_cached", "next_id", "log_lines", "best"):
        assert replayed[key] == state24[key], key
    assert replayed["cache"]["entries"] == state24["cache"]["entries"]
    assert run.records() == recs  # torn line dropped, nothing added, nothing lost
    _search(tmp_path, pool, "k", **{"search.max_evals": 30}).run(resume=True)
    after = run.records()
    ids = [x.id for x in after]
    assert len(ids) == len(set(ids)) and after[:len(recs)] == recs
    assert sum(not x.cached for x in after) == 30


def test_restart_from_best_after_a_plateau(tmp_path, pool):
    s = _search(tmp_path, pool, "plateau", **{"search.restart_after": 3}).run()
    state = s.rundir.read_checkpoint()
    assert state["restarts"] >= 1
    assert s.state.n_trained == 24
    plain = _search(tmp_path, pool, "no-restart").run()
    assert plain.rundir.read_checkpoint()["restarts"] == 0


def test_hurdle_stops_children_worse_than_the_population_and_trains_the_rest(tmp_path, pool):
    """With a hurdle, a new child trains on the first seeds; worse than the population's
    quantile, it stops there and is logged with that figure; else it trains on the rest, and
    its fitness is over all its seeds, as without a hurdle."""
    s = _search(tmp_path, pool, "h", **{"search.hurdle_seeds": 1, "search.max_evals": 30})
    recs = s.run().rundir.records()
    trained = [r for r in recs if not r.cached]
    stopped = [r for r in trained if r.stopped]
    full = [r for r in trained if not r.stopped]
    assert stopped and len(full) >= 2 and len(trained) == 30
    assert s.state.n_stopped == len(stopped)
    for r in stopped:
        assert len(r.losses) == 1
        if r.loss is None:  # diverged on its hurdle seed: the worst figure, and said so
            assert r.diverged and r.losses == [None] and r.hurdle == math.inf
        else:
            assert not r.diverged and r.loss == r.losses[0] == r.hurdle
    for r in full:
        assert len(r.losses) == 2 and r.loss == pytest.approx(np.mean(r.losses))
        assert r.hurdle == pytest.approx(r.losses[0])
    # the start's figure is on the same seed, and the hurdle fields survive a resume
    assert recs[0].hurdle == pytest.approx(recs[0].losses[0])
    more = _search(tmp_path, pool, "h", **{"search.hurdle_seeds": 1, "search.max_evals": 40})
    after = more.run(resume=True).rundir.records()
    assert after[:len(recs)] == recs and len({r.id for r in after}) == len(after)
    assert sum(not r.cached for r in after) == 40


def test_fingerprint_is_a_second_cache_key(tmp_path, pool):
    """With search.fingerprint, a child whose hash is new but whose functional fingerprint
    (dsl.fingerprint) was trained takes that fitness: no two trained children share one."""
    from optevo.dsl.fingerprint import fingerprint
    s = _search(tmp_path, pool, "fp", **{"search.fingerprint": True, "search.max_evals": 300})
    recs = s.run().rundir.records()
    fps = {r.id: fingerprint(parse(r.program)) for r in recs}
    trained = [r for r in recs if not r.cached]
    assert len(trained) == 300 and len({fps[r.id] for r in trained}) == len(trained)
    by_fp = {fps[r.id]: r for r in trained}
    hits = [r for r in recs if r.fingerprint_hit]
    assert hits and s.state.cache.fingerprint_hits == len(hits)
    for r in hits:
        twin = by_fp[fps[r.id]]
        assert r.hash != twin.hash and r.loss == twin.loss and twin.id < r.id
    state = s.rundir.read_checkpoint()
    assert len(state["cache"]["fingerprints"]) == len(trained)


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_it(tmp_path, pool):
    """Killed during the start's calibration (no checkpoint; the log empty or holding only
    the start), a run resumes from the beginning instead of refusing."""
    full = _search(tmp_path, pool, "ref").run().rundir.records()
    for kept in (0, 1):
        s = _search(tmp_path, pool, f"early{kept}")
        s.rundir.path.mkdir(parents=True, exist_ok=True)
        s.rundir.log.path.write_text("".join(json.dumps(r.to_json()) + "\n"
                                             for r in full[:kept]))
        recs = s.run(resume=True).rundir.records()
        assert _strip_times(recs) == _strip_times(full)
    s = _search(tmp_path, pool, "late")  # a log with more than the start: refused
    s.rundir.path.mkdir(parents=True, exist_ok=True)
    s.rundir.log.path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in full[:5]))
    with pytest.raises(RunDirError, match="no checkpoint, but its log holds 5 records"):
        s.run(resume=True)


def test_resume_refuses_a_log_behind_its_checkpoint(tmp_path, pool):
    """A torn line the checkpoint already counted (or a cut log) is refused with one line;
    before, resume silently skipped the next record and let a program be trained twice."""
    s = _search(tmp_path, pool, "torn", **{"search.max_evals": 12}).run()
    run = RunDir(tmp_path / "torn")
    log = run.file("evaluations.jsonl")
    data = log.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    log.write_bytes(data[:last + 20])  # the last counted record torn by a kill
    with pytest.raises(RunDirError, match=r"holds \d+ complete records but the checkpoint "
                                          r"counts \d+"):
        _search(tmp_path, pool, "torn", **{"search.max_evals": 24}).run(resume=True)
    assert log.read_bytes() == data[:last + 20]  # refused before anything was changed
    # a log whose counted records differ from the checkpoint's (another run's log)
    lines = data.decode().splitlines(keepends=True)
    other = json.loads(lines[-1])
    other["id"] += 1000
    log.write_text("".join(lines[:-1]) + json.dumps(other) + "\n")
    with pytest.raises(RunDirError, match="does not match its checkpoint"):
        _search(tmp_path, pool, "torn", **{"search.max_evals": 24}).run(resume=True)
    log.write_bytes(data)  # the intact log resumes
    recs = _search(tmp_path, pool, "torn", **{"search.max_evals": 16}).run(
        resume=True).rundir.records()
    assert len({r.id for r in recs}) == len(recs) and sum(not r.cached for r in recs) == 16
    del s


@pytest.mark.parametrize("damage", [
    "[]", '{"version": 1}', '{"version": 1, "rng": 5}', "null",
    '{"version": 1, "population": [{"id": "x"}]}'])
def test_resume_of_a_damaged_checkpoint_is_one_line(tmp_path, pool, damage):
    _search(tmp_path, pool, "dmg", **{"search.max_evals": 6}).run()
    run = RunDir(tmp_path / "dmg")
    good = run.read_checkpoint()
    if damage.startswith("{") and '"population"' in damage:
        bad = {**good, "population": json.loads(damage)["population"]}
        run.file("checkpoint.json").write_text(json.dumps(bad))
    else:
        run.file("checkpoint.json").write_text(damage)
    with pytest.raises(RunDirError, match="checkpoint"):
        _search(tmp_path, pool, "dmg", **{"search.max_evals": 8}).run(resume=True)


def test_hall_of_fame_and_eta_of_the_live_display(tmp_path, pool):
    """The live panel's hall of fame: distinct programs, best first, simplified; the plain
    line ends with the time left of the budget."""
    from optevo.search.core.progress import hall_of_fame, line, snapshot
    s = _search(tmp_path, pool, "hof").run()
    fame = hall_of_fame(s, 4)
    losses = [f[1] for f in fame]
    assert fame and losses == sorted(losses) and losses[0] == s.state.best.loss
    alive = {m.id: m.hash for m in s.state.population.members}
    alive[s.state.best.id] = s.state.best.hash
    assert len({alive[f[0]] for f in fame}) == len(fame)  # one row per program hash
    assert all(f[3] == len(parse(f[4]).stmts) for f in fame)
    d = snapshot(s)
    assert d["evals_left"] == 0 and line(d).endswith("ETA 0 s left")


def test_a_search_that_draws_only_known_children_ends_stalled_and_says_so(tmp_path):
    """SGD has one child by deletion (``update = g * lr``); with deletion the only mutation,
    every later draw is invalid or known: the search stops long before its budget, and
    ``summary.json`` says it stalled rather than finished."""
    import contextlib
    import io
    from optevo.search import run
    d = json.loads(json.dumps(TINY))
    d["holdout"].update(top_k=1, baselines=[])
    d["search"].update(start="sgd", max_evals=500, max_mutation_tries=1,
                       mutations={"insert": 0.0, "delete": 1.0, "change_arg": 0.0,
                                  "scale_const": 0.0})
    with contextlib.redirect_stdout(io.StringIO()):
        r = run(d, tmp_path / "stall")
    s = r.rundir.summary()
    assert s["stalled"] is True and s["trained"] == 2  # the start and its one child
    plain = json.loads((tmp_path / "stall" / "checkpoint.json").read_text())
    assert plain["done"] and plain["n_trained"] == 2
