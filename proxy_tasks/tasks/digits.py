"""``digits_mlp``: a small MLP classifying scikit-learn's 8x8 handwritten digits.

The data (1797 images, 64 pixels with values 0..16, 10 classes) ships with scikit-learn, so
nothing is downloaded. A fixed, seeded permutation splits it into train and validation parts;
pixels are standardised with the training split's per-pixel mean and standard deviation.
"""

from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from .base import Rule, check_options, register
from .common import ScheduledTask, dense_init, softmax_cross_entropy

_DATA_CACHE: Dict[tuple, tuple] = {}
N_IMAGES = 1797  # load_digits: the split keeps at least one image on each side


def _load_split(n_val: int, split_seed: int, inputs: str = "standardize"):
    """(x_train, y_train, x_val, y_val) as numpy arrays; deterministic for given arguments.

    ``inputs="standardize"``: per-pixel (x - mean) / std with training-split statistics;
    ``inputs="unit"``: x / 16, i.e. pixels in [0, 1] (not centred, so worse conditioned).
    """
    if inputs not in ("standardize", "unit"):
        raise ValueError(f"inputs must be 'standardize' or 'unit', got {inputs!r}")
    cache_key = (n_val, split_seed, inputs)
    if cache_key not in _DATA_CACHE:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = np.asarray(d.data, np.float32)
        y = np.asarray(d.target, np.int32)
        perm = np.random.RandomState(split_seed).permutation(len(y))
        x, y = x[perm], y[perm]
        x_tr, y_tr, x_va, y_va = x[n_val:], y[n_val:], x[:n_val], y[:n_val]
        if inputs == "unit":
            mean, std = np.zeros(64, np.float32), np.full(64, 16.0, np.float32)
        else:
            mean = x_tr.mean(axis=0)
            std = x_tr.std(axis=0)
            std = np.where(std < 1e-3, 1.0, std)  # a few border pixels are always 0
        x_tr = ((x_tr - mean) / std).astype(np.float32)
        x_va = ((x_va - mean) / std).astype(np.float32)
        _DATA_CACHE[cache_key] = (x_tr, y_tr, x_va, y_va)
    return _DATA_CACHE[cache_key]


class DigitsClassifier(ScheduledTask):
    """What the digits tasks share: the run settings (:class:`ScheduledTask`), the split of
    :func:`_load_split` with images shaped ``image_shape`` (``x_train, y_train, x_val, y_val,
    n_train``), random mini-batches of the training split, softmax cross-entropy and
    accuracy. A subclass defines ``_logits(params, x)``."""

    OPTIONS = {"batch_size": Rule(int, ge=1), "n_val": Rule(int, ge=1, le=N_IMAGES - 1),
               "split_seed": Rule(int, ge=0, le=2**32 - 1),
               "inputs": Rule(str, choices=("standardize", "unit"))}

    def __init__(self, *, n_val, split_seed, inputs, image_shape, **run):
        super().__init__(**run)
        self.n_val, self.split_seed, self.inputs = int(n_val), int(split_seed), inputs
        x_tr, y_tr, x_va, y_va = _load_split(self.n_val, self.split_seed, inputs)
        self.x_train = jnp.asarray(x_tr).reshape((-1,) + tuple(image_shape))
        self.y_train = jnp.asarray(y_tr)
        self.x_val = jnp.asarray(x_va).reshape((-1,) + tuple(image_shape))
        self.y_val = jnp.asarray(y_va)
        self.n_train = int(x_tr.shape[0])

    def train_batch(self, key):
        idx = jax.random.randint(key, (self.batch_size,), 0, self.n_train)
        return {"x": self.x_train[idx], "y": self.y_train[idx]}

    def loss(self, params, batch):
        return softmax_cross_entropy(self._logits(params, batch["x"]), batch["y"])

    def val_loss(self, params):
        return softmax_cross_entropy(self._logits(params, self.x_val), self.y_val)

    def metrics(self, params):
        pred = jnp.argmax(self._logits(params, self.x_val), axis=-1)
        return {"accuracy": jnp.mean((pred == self.y_val).astype(jnp.float32))}


@register("digits_mlp")
class DigitsMLP(DigitsClassifier):
    """Softmax cross-entropy of a ``64 -> hidden -> ... -> 10`` tanh MLP on load_digits.

    Args:
      steps, batch_size, seeds: run length, mini-batch size, number of seeds per fitness.
      hidden: width of each hidden layer; depth: number of hidden layers.
      n_val: size of the validation split (the rest, 1797 - n_val, is the training split).
      split_seed: seed of the fixed train/validation permutation (not the run seed).
      inputs: ``"standardize"`` (per-pixel z-score) or ``"unit"`` (pixels / 16).
      schedule: ``"constant"`` or ``"cosine"`` (decay to 0 over ``steps``) for the ``lr`` input.
      max_abs_weight: divergence threshold on the largest |parameter|.

    Parameters: {"w1", "b1", ..., "w{depth+1}", "b{depth+1}"}, float32. Batches are index draws
    (with replacement) from the training split using the given key.

    Defaults (scripts/experiments/calibrate_tasks.py, lr scale tuned per optimizer on 2^-10..2^10): with
    standardised inputs and a constant lr the AdamW start and SGD end within 0.1-1 standard
    error of each other (the task ranks programs by step size only). Pixels in [0, 1] (not
    centred: worse conditioned) plus a cosine lr decay separate them by ~12 SE over 16 seeds
    (val loss 0.116 vs 0.148) while signum matches AdamW; one seed's loss varies by ~8%, so
    the default is 16 seeds (SE ~2%). One seed-run of 300 steps costs ~9-15 ms on one core.
    """

    OPTIONS = {"hidden": Rule(int, ge=1), "depth": Rule(int, ge=0)}

    def __init__(self, steps: int = 300, batch_size: int = 32, hidden: int = 32, depth: int = 1,
                 seeds: int = 16, n_val: int = 597, split_seed: int = 0,
                 inputs: str = "unit", schedule: str = "cosine",
                 max_abs_weight: float = 1e3):
        check_options(type(self), locals())
        super().__init__(steps=steps, batch_size=batch_size, seeds=seeds, schedule=schedule,
                         max_abs_weight=max_abs_weight, n_val=n_val, split_seed=split_seed,
                         inputs=inputs, image_shape=(64,))
        self.hidden, self.depth = int(hidden), int(depth)
        self.sizes = [64] + [self.hidden] * self.depth + [10]

    def init_params(self, key):
        keys = jax.random.split(key, len(self.sizes) - 1)
        params = {}
        for i, (k, a, b) in enumerate(zip(keys, self.sizes[:-1], self.sizes[1:]), start=1):
            params[f"w{i}"] = dense_init(k, a, b)
            params[f"b{i}"] = jnp.zeros((b,), jnp.float32)
        return params

    def _logits(self, params, x):
        n = len(self.sizes) - 1
        h = x
        for i in range(1, n):
            h = jnp.tanh(h @ params[f"w{i}"] + params[f"b{i}"])
        return h @ params[f"w{n}"] + params[f"b{n}"]

    def describe(self):
        return (f"{self.name}: {self.steps} steps, batch {self.batch_size}, MLP 64-"
                + "-".join(str(s) for s in self.sizes[1:]) + f", {self.seeds} seeds, "
                f"{self.n_train} train / {self.n_val} val, {self.schedule} lr")
