"""``lm_transformer``: a small causal transformer language model on standard-library text.

Characters of ``pydoc_data.topics`` (the corpus and vocabulary of ``text_lm``: ships with
Python, nothing is downloaded). Model: token + learned position embeddings (``width``),
``layers`` pre-LayerNorm blocks (causal multi-head self-attention with ``heads`` heads, then
a ``4 x width`` GELU MLP, both residual), a final LayerNorm and an untied output projection.
Every position of a ``context``-character window predicts the next character; the loss is
the mean next-character cross-entropy. The validation loss averages ``n_val_windows`` fixed,
evenly spaced windows of the held-out end of the stream. The lr input follows a warm-up +
cosine schedule by default (``proxy_tasks.schedules``). Larger funnel stages raise
``layers``, ``width``, ``context`` and ``steps``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .base import Rule, TaskOptionError, check_options, register
from .common import dense_init, softmax_cross_entropy
from .text_lm import CharWindowLM


def _layer_norm(x, scale, bias):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-5) * scale + bias


@register("lm_transformer")
class LMTransformer(CharWindowLM):
    """Args: ``steps, batch_size, seeds``; ``context`` window length; ``width`` model width;
    ``layers`` transformer blocks; ``heads`` attention heads (divides ``width``);
    ``n_chars, min_count, val_frac, n_val_windows`` as in ``text_lm``; ``words``: 0 for
    characters, or a word vocabulary of this size (``text_lm.load_words``: Zipfian classes); ``schedule`` a kind
    or mapping for ``schedules.make`` (default: warm-up over 5% of the run, cosine to 0).

    Defaults: the funnel's second stage (``configs/funnel.yaml``): ~14x the FLOPs and ~6-7x
    the time per seed-run of ``digits_cnn`` (~0.9 s on one core, AdamW start program)."""

    OPTIONS = {"width": Rule(int, ge=1), "layers": Rule(int, ge=0), "heads": Rule(int, ge=1)}

    @classmethod
    def check_joint(cls, options):
        width, heads = options.get("width"), options.get("heads")
        if width % heads:
            raise TaskOptionError(cls.name, "heads", f"expected a divisor of width ({width}), "
                                  f"got {heads}")
        super().check_joint(options)

    def __init__(self, steps: int = 300, batch_size: int = 8, context: int = 32,
                 width: int = 32, layers: int = 2, heads: int = 2, seeds: int = 4,
                 n_chars: int = 200_000, min_count: int = 100, val_frac: float = 0.1,
                 n_val_windows: int = 256, schedule="warmup_cosine", warmup: float = 0.05,
                 max_abs_weight: float = 1e3, words: int = 0):
        check_options(type(self), locals())
        super().__init__(steps=steps, batch_size=batch_size, seeds=seeds, schedule=schedule,
                         max_abs_weight=max_abs_weight, warmup=warmup, total_steps=int(steps),
                         context=context, n_chars=n_chars, min_count=min_count,
                         val_frac=val_frac, n_val_windows=n_val_windows, words=words)
        self.warmup = warmup
        self.width, self.layers, self.heads = int(width), int(layers), int(heads)
        self.mask = jnp.tril(jnp.ones((self.context, self.context), bool))

    def init_params(self, key):
        d, V, T = self.width, self.vocab_size, self.context
        keys = iter(jax.random.split(key, 3 + 4 * self.layers))
        ones, zeros = jnp.ones((d,), jnp.float32), jnp.zeros((d,), jnp.float32)
        p = {"tok": 0.02 * jax.random.normal(next(keys), (V, d), jnp.float32),
             "pos": 0.02 * jax.random.normal(next(keys), (T, d), jnp.float32),
             "lnf_s": ones, "lnf_b": zeros,
             "out": 0.02 * jax.random.normal(next(keys), (d, V), jnp.float32),
             "out_b": jnp.zeros((V,), jnp.float32)}
        for i in range(self.layers):
            p[f"l{i}"] = {
                "ln1_s": ones, "ln1_b": zeros, "ln2_s": ones, "ln2_b": zeros,
                "qkv": dense_init(next(keys), d, 3 * d),
                "proj": dense_init(next(keys), d, d, gain=1.0 / np.sqrt(2 * self.layers)),
                "fc": dense_init(next(keys), d, 4 * d), "fc_b": jnp.zeros((4 * d,), jnp.float32),
                "fc2": dense_init(next(keys), 4 * d, d, gain=1.0 / np.sqrt(2 * self.layers)),
                "fc2_b": zeros}
        return p

    def _block(self, p, x):
        B, T, d = x.shape
        H = self.heads
        h = _layer_norm(x, p["ln1_s"], p["ln1_b"])
        q, k, v = jnp.split(h @ p["qkv"], 3, axis=-1)
        q, k, v = (a.reshape(B, T, H, d // H) for a in (q, k, v))
        att = jnp.einsum("bqhc,bkhc->bhqk", q, k) / np.sqrt(d // H)
        att = jnp.where(self.mask[:T, :T], att, -1e9)
        att = jax.nn.softmax(att, axis=-1)
        y = jnp.einsum("bhqk,bkhc->bqhc", att, v).reshape(B, T, d)
        x = x + y @ p["proj"]
        h = _layer_norm(x, p["ln2_s"], p["ln2_b"])
        h = jax.nn.gelu(h @ p["fc"] + p["fc_b"])
        return x + h @ p["fc2"] + p["fc2_b"]

    def _loss_on_windows(self, params, windows):
        x_ids, y = windows[:, :-1], windows[:, 1:]
        x = params["tok"][x_ids] + params["pos"][None, : x_ids.shape[1]]
        for i in range(self.layers):
            x = self._block(params[f"l{i}"], x)
        x = _layer_norm(x, params["lnf_s"], params["lnf_b"])
        return softmax_cross_entropy(x @ params["out"] + params["out_b"], y)

    def describe(self):
        unit = "words" if self.words else "chars"
        return (f"{self.name}: {self.steps} steps, batch {self.batch_size} x {self.context} "
                f"{unit}, {self.layers} layers, width {self.width}, {self.heads} heads, vocab "
                f"{self.vocab_size}, {self.schedule} lr (warm-up {self.warmup})")
