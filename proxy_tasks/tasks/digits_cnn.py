"""``digits_cnn``: a small convolutional network on scikit-learn's 8x8 digits (funnel stage).

The same data, split and pixel scaling as ``digits_mlp`` (``digits.DigitsClassifier``), so a
program's loss here says how it does on a larger model of the search proxy's own problem.
Model: ``conv 3x3 (c1 channels, same padding) -> relu -> conv 3x3 stride 2 (c2 channels)
-> relu -> flatten (4 x 4 x c2) -> dense hidden -> relu -> dense 10``; softmax
cross-entropy. Parameters {"c1", "cb1", "c2", "cb2", "w1", "b1", "w2", "b2"}, float32.
The lr input follows a warm-up + cosine schedule by default (``proxy_tasks.schedules``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import Rule, check_options, register
from .common import dense_init
from .digits import DigitsClassifier


def _conv(x, k, b, stride):
    """3x3 convolution, same padding, as one matrix product over the 9 shifted views
    (im2col: on CPU several times faster than XLA's convolution at these sizes)."""
    B, H, W, C = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = jnp.concatenate([xp[:, i:i + H:stride, j:j + W:stride, :]
                            for i in range(3) for j in range(3)], axis=-1)
    return jax.nn.relu(cols @ k.reshape(9 * C, -1) + b)


@register("digits_cnn")
class DigitsCNN(DigitsClassifier):
    """Args: ``steps, batch_size, seeds``; ``c1, c2`` conv channels; ``hidden`` dense width;
    ``n_val, split_seed, inputs`` as in ``digits_mlp``; ``schedule`` a kind or mapping for
    ``schedules.make`` (default warm-up over 5% of the run, then cosine decay to 0).

    Defaults: the funnel's first stage above the search proxy (``configs/funnel.yaml``):
    ~12x the FLOPs of ``digits_mlp``'s 300 steps (XLA cost analysis of the gradient step)
    and ~8x its time per seed-run on one core (AdamW start program, fast engine)."""

    OPTIONS = {"c1": Rule(int, ge=1), "c2": Rule(int, ge=1), "hidden": Rule(int, ge=1)}

    def __init__(self, steps: int = 500, batch_size: int = 32, c1: int = 4, c2: int = 8,
                 hidden: int = 32, seeds: int = 8, n_val: int = 597, split_seed: int = 0,
                 inputs: str = "unit", schedule="warmup_cosine", warmup: float = 0.05,
                 max_abs_weight: float = 1e3):
        check_options(type(self), locals())
        super().__init__(steps=steps, batch_size=batch_size, seeds=seeds, schedule=schedule,
                         max_abs_weight=max_abs_weight, warmup=warmup, total_steps=int(steps),
                         n_val=n_val, split_seed=split_seed, inputs=inputs,
                         image_shape=(8, 8, 1))
        self.warmup = warmup
        self.c1, self.c2, self.hidden = int(c1), int(c2), int(hidden)

    def init_params(self, key):
        k = jax.random.split(key, 4)
        c1, c2, h = self.c1, self.c2, self.hidden

        def conv_init(key, cin, cout):
            return dense_init(key, 9 * cin, cout).reshape(3, 3, cin, cout)

        return {"c1": conv_init(k[0], 1, c1), "cb1": jnp.zeros((c1,), jnp.float32),
                "c2": conv_init(k[1], c1, c2), "cb2": jnp.zeros((c2,), jnp.float32),
                "w1": dense_init(k[2], 16 * c2, h), "b1": jnp.zeros((h,), jnp.float32),
                "w2": dense_init(k[3], h, 10), "b2": jnp.zeros((10,), jnp.float32)}

    def _logits(self, p, x):
        h = _conv(x, p["c1"], p["cb1"], 1)
        h = _conv(h, p["c2"], p["cb2"], 2).reshape(x.shape[0], -1)
        h = jax.nn.relu(h @ p["w1"] + p["b1"])
        return h @ p["w2"] + p["b2"]

    def describe(self):
        return (f"{self.name}: {self.steps} steps, batch {self.batch_size}, CNN conv{self.c1}-"
                f"conv{self.c2}/2-{self.hidden}-10, {self.n_train} train / {self.n_val} val, "
                f"{self.schedule} lr (warm-up {self.warmup})")
