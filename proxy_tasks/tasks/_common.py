"""Small helpers shared by the built-in tasks (pure jax.numpy, jittable)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def dense_init(key, fan_in: int, fan_out: int, gain: float = 1.0):
    """A float32 weight matrix drawn from N(0, gain^2 / fan_in) (LeCun/He-style scaling)."""
    std = gain / jnp.sqrt(jnp.float32(fan_in))
    return (jax.random.normal(key, (fan_in, fan_out), jnp.float32) * std).astype(jnp.float32)


def softmax_cross_entropy(logits, labels):
    """Mean over the leading axes of -log softmax(logits)[label] (labels are integer ids)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jnp.mean(nll)


def cosine_schedule(step, total_steps, warmup: int = 0, final: float = 0.0):
    """Linear warm-up over ``warmup`` steps, then cosine decay from 1 to ``final``."""
    step = jnp.asarray(step, jnp.float32)
    total = jnp.maximum(jnp.asarray(total_steps, jnp.float32), 1.0)
    w = jnp.float32(max(warmup, 0))
    warm = jnp.where(w > 0, jnp.minimum((step + 1.0) / jnp.maximum(w, 1.0), 1.0), 1.0)
    frac = jnp.clip((step - w) / jnp.maximum(total - w, 1.0), 0.0, 1.0)
    cos = final + (1.0 - final) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    return (warm * cos).astype(jnp.float32)
