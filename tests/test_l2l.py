"""The learned LSTM optimizer (proxy_tasks/baselines/l2l.py, proxy_tasks/l2l_train.py; Andrychowicz et al. 2016):
preprocessing, save/load to the same updates, meta-training lowers the meta-loss, the
``l2l`` baseline kind and the ``optevo l2l train`` command."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optevo.proxy_tasks import get_task, l2l
from optevo.proxy_tasks.l2l_train import meta_train, trajectory_loss
from optevo.proxy_tasks.baselines.specs import parse_spec, spec_text
from optevo.proxy_tasks.optax_engine import OptaxEngine
from optevo.search.cli import main


def test_preprocessing_is_the_papers():
    g = jnp.array([1.0, -1e-2, 1e-6, -1e-6, 0.0])
    x = np.asarray(l2l.preprocess(g))
    np.testing.assert_allclose(x[:2, 0], [0.0, np.log(1e-2) / 10], rtol=1e-6)
    np.testing.assert_allclose(x[:2, 1], [1.0, -1.0])
    # below e^-10 = 4.5e-5: (-1, e^10 g)
    np.testing.assert_allclose(x[2:, 0], [-1.0, -1.0, -1.0])
    np.testing.assert_allclose(x[2:, 1], [np.exp(10) * 1e-6, -np.exp(10) * 1e-6, 0.0],
                               rtol=1e-5)


def _updates(opt, grads):
    params = {"a": jnp.zeros((3, 2)), "b": jnp.zeros(4)}
    state, out = opt.init(params), []
    for g in grads:
        u, state = opt.update(g, state, params)
        out.append(u)
    return out


def test_saved_and_loaded_weights_give_the_same_updates(tmp_path):
    w = l2l.init_weights(jax.random.PRNGKey(3))
    w = {**w, "out_w": w["out_w"] * 30}  # not tiny: updates differ visibly between weights
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    grads = [{"a": jax.random.normal(k, (3, 2)) * 10.0 ** -i, "b": jax.random.normal(k, (4,))}
             for i, k in enumerate(keys)]
    path = l2l.save(tmp_path / "w.npz", w, info="test weights")
    loaded = l2l.load(path)
    assert loaded["meta_info"] == "test weights"
    a = _updates(l2l.l2l_optimizer(w, 0.5), grads)
    b = _updates(l2l.load_optimizer(str(path), 0.5), grads)
    for ua, ub in zip(a, b):
        for k in ua:
            np.testing.assert_array_equal(np.asarray(ua[k]), np.asarray(ub[k]))
    other = _updates(l2l.l2l_optimizer(l2l.init_weights(jax.random.PRNGKey(4)), 0.5), grads)
    assert not np.allclose(other[-1]["b"], a[-1]["b"])
    # the hidden state carries over: the same gradient twice gives different updates
    same = _updates(l2l.l2l_optimizer(w), [grads[0], grads[0]])
    assert not np.allclose(same[0]["a"], same[1]["a"])
    with open(path, "rb") as fh:  # a plain npz: no pickled objects inside
        np.load(fh, allow_pickle=False)


def test_bad_weights_files_are_one_line_errors(tmp_path):
    with pytest.raises(l2l.L2LError, match="no such file"):
        l2l.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", l0_w=np.zeros((3, 3), np.float32))
    with pytest.raises(l2l.L2LError, match="missing"):
        l2l.load(tmp_path / "bad.npz")
    w = {k: np.asarray(v) for k, v in l2l.init_weights(jax.random.PRNGKey(0)).items()}
    np.savez(tmp_path / "shape.npz", **{**w, "l1_b": np.zeros(3, np.float32)})
    with pytest.raises(l2l.L2LError, match="wrong shape"):
        l2l.load(tmp_path / "shape.npz")


TINY = dict(dim=4, cond=10.0, lam_max=1.0, steps=12, seeds=2)


def test_meta_training_reduces_the_meta_loss(tmp_path):
    task = get_task("quadratic", **TINY)
    w0 = l2l.init_weights(jax.random.PRNGKey(0))
    seeds = [5, 6, 7, 8]  # evaluation seeds, not the meta-training ones
    before = trajectory_loss(w0, task, seeds, unroll=6)
    res = meta_train(task, unroll=6, meta_steps=40, batch=4, meta_lr=1e-2, weights=w0)
    after = trajectory_loss(res.weights, task, seeds, unroll=6)
    assert len(res.history) == 40 and np.all(np.isfinite(res.history))
    assert after < 0.8 * before, (before, after)
    # the trained weights run as the ``l2l`` baseline kind, through the engines' loop
    path = res.save(tmp_path / "tiny.npz")
    text = spec_text("l2l", weights=str(path))
    assert parse_spec(text)[1]["weights"] == str(path)
    eng = OptaxEngine(task)
    r1, r2 = eng.run([text, text], [0, 1])
    assert np.all(np.isfinite(r1.losses)) and np.array_equal(r1.losses, r2.losses)
    half = eng.run([text], [0, 1], lr_scales=0.0)[0]  # lr 0: nothing moves
    start = eng.run([spec_text("adamw", learning_rate=0.0, weight_decay=0.0)], [0, 1])[0]
    np.testing.assert_allclose(half.losses, start.losses, rtol=1e-6)


def test_meta_training_rejects_bad_settings():
    task = get_task("quadratic", **TINY)
    for kw in ({"unroll": 0}, {"meta_steps": 0}, {"batch": 0}, {"meta_lr": -1.0}):
        with pytest.raises(l2l.L2LError):
            meta_train(task, **kw)


def test_l2l_train_command(tmp_path, capsys):
    out = tmp_path / "cli.npz"
    rc = main(["l2l", "train", "--task", "quadratic", "--steps", "8", "--unroll", "4",
               "--meta-steps", "2", "--batch", "2", "--eval-seeds", "0", "--out", str(out)])
    assert rc == 0 and out.is_file()
    assert "wrote" in capsys.readouterr().out
    assert l2l.load(out)["meta_info"].startswith("meta-trained on quadratic")
    assert main(["l2l", "train", "--task", "quadratic", "--unroll", "0"]) == 2
    assert main(["l2l", "train", "--task", "quadratic", "--out", "x.pkl"]) == 2
    assert "--out must name an .npz" in capsys.readouterr().err


def test_l2l_train_takes_a_plugin_task_from_import(tmp_path, capsys, request):
    """``--import`` as eval and search have it (issue #22): the README's plugin task."""
    import sys
    from pathlib import Path
    from optevo.proxy_tasks.tasks import base

    def forget():
        base._REGISTRY.pop("my_regression", None)
        for mod in [m for m in sys.modules if m.startswith("optevo_plugin_my_task")]:
            del sys.modules[mod]
    request.addfinalizer(forget)
    plugin = Path(__file__).resolve().parents[1] / "configs" / "examples" / "my_task.py"
    argv = ["l2l", "train", "--task", "my_regression", "--steps", "8", "--unroll", "4",
            "--meta-steps", "2", "--batch", "2", "--eval-seeds", "0"]
    if "my_regression" not in base._REGISTRY:
        assert main(argv + ["--out", str(tmp_path / "no.npz")]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "my_regression" in err, err
    assert main(argv + ["--import", "no_such_plugin_xyz", "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "plugin no_such_plugin_xyz: no module named" in err
    out = tmp_path / "mine.npz"
    assert main(argv + ["--import", str(plugin), "--out", str(out)]) == 0
    assert l2l.load(out)["meta_info"].startswith("meta-trained on my_regression")


def test_packaged_default_weights_load_as_the_l2l_kind():
    w = l2l.load()  # configs/l2l/digits_mlp.npz, made by optevo l2l train --task digits_mlp
    assert w["meta_info"].startswith("meta-trained on digits_mlp (300 steps)")
    assert l2l.hidden_size(w) == 20 and w["l0_w"].shape == (22, 80)
    assert parse_spec(spec_text("l2l"))[1]["weights"] == "digits_mlp"
    u = _updates(l2l.load_optimizer(), [{"a": jnp.ones((3, 2)), "b": -jnp.ones(4)}])[0]
    assert np.all(np.isfinite(u["a"])) and np.any(np.asarray(u["a"]) != 0)
