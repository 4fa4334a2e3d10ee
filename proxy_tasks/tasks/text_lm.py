"""``text_lm``: a tiny character-level language model on text from the Python standard library.

The corpus is ``pydoc_data.topics.topics`` (the help texts of the ``help()`` topics, about
465K characters on CPython 3.x; it ships with every Python, so nothing is downloaded). Topics
are joined in sorted-key order and the first ``n_chars`` characters are kept. The exact text
depends on the Python version, so losses are comparable only within one Python version.

Vocabulary: every character occurring at least ``min_count`` times gets its own id (sorted by
code point, ids 1..V-1); rarer characters share id 0. The stream is split into a training
part (first ``1 - val_frac``) and a validation part (the rest).

Model: the previous ``context`` characters are embedded (``embed`` dims each), concatenated,
fed through one tanh hidden layer (``hidden`` units) and a softmax over the vocabulary that
predicts the next character. Parameters {"emb", "w1", "b1", "w2", "b2"}, float32.
"""

from __future__ import annotations

import collections
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from .base import Rule, TaskOptionError, check_options, register
from .common import ScheduledTask, dense_init, softmax_cross_entropy

_CORPUS_CACHE: Dict[tuple, tuple] = {}


def _text(n_chars: int) -> str:
    """The first ``n_chars`` characters of the help topics, joined in sorted-key order."""
    from pydoc_data.topics import topics
    return "".join(topics[k] for k in sorted(topics))[: int(n_chars)]


def load_corpus(n_chars: int, min_count: int):
    """(ids as a uint8 numpy array, vocabulary string with '\\x00' standing for the rare id 0)."""
    cache_key = (n_chars, min_count)
    if cache_key not in _CORPUS_CACHE:
        text = _text(n_chars)
        counts = collections.Counter(text)
        kept = sorted(c for c, n in counts.items() if n >= min_count)
        if len(kept) > 255:
            raise ValueError("vocabulary too large for uint8 ids; raise min_count")
        table = {c: i + 1 for i, c in enumerate(kept)}
        ids = np.fromiter((table.get(c, 0) for c in text), dtype=np.uint8, count=len(text))
        _CORPUS_CACHE[cache_key] = (ids, "\x00" + "".join(kept))
    return _CORPUS_CACHE[cache_key]


def load_words(n_chars: int, vocab_size: int):
    """Word-level ids (uint16) of the same text: tokens are runs of letters, runs of digits,
    or one other non-space character (spaces dropped); the ``vocab_size - 1`` most frequent
    tokens (ties by first occurrence) get ids 1..V-1 by rank, the rest share id 0. Word
    frequencies are Zipfian, so most classes are rare: the heavy-tailed class imbalance under
    which gradient descent falls behind Adam (Kunstner et al. 2024, arXiv 2402.19449)."""
    cache_key = ("words", n_chars, vocab_size)
    if cache_key not in _CORPUS_CACHE:
        import re

        text = _text(n_chars)
        tokens = re.findall(r"[A-Za-z]+|[0-9]+|[^\sA-Za-z0-9]", text)
        kept = [w for w, _ in collections.Counter(tokens).most_common(int(vocab_size) - 1)]
        table = {w: i + 1 for i, w in enumerate(kept)}
        ids = np.fromiter((table.get(w, 0) for w in tokens), dtype=np.uint16, count=len(tokens))
        _CORPUS_CACHE[cache_key] = (ids, ["<rare>"] + kept)
    return _CORPUS_CACHE[cache_key]


def _split_sizes(n: int, context: int, val_frac: float):
    """(training, validation) lengths of a stream of ``n`` ids; each must hold a window of
    ``context + 1`` ids (ValueError otherwise)."""
    n_val = int(n * float(val_frac))
    if n - n_val <= context + 1 or n_val <= context + 1:
        raise ValueError("corpus too short for the context length")
    return n - n_val, n_val


def split_windows(ids, context: int, val_frac: float, n_val_windows: int):
    """The character stream split in two: training ids (windows of ``context + 1`` start
    anywhere in them) and ``n_val_windows`` fixed, evenly spaced validation windows.
    Returns (train ids, number of training window starts, validation windows)."""
    n_train, _ = _split_sizes(len(ids), context, val_frac)
    train, val = ids[:n_train], ids[n_train:]
    w = context + 1
    starts = np.linspace(0, len(val) - w, int(n_val_windows)).astype(np.int64)
    return (jnp.asarray(train, jnp.int32), len(train) - w + 1,
            jnp.asarray(val[starts[:, None] + np.arange(w)[None, :]], jnp.int32))


def _ids(n_chars: int, min_count: int, words: int):
    """(ids, vocabulary): words if ``words`` (the vocabulary size), else characters."""
    return load_words(n_chars, words) if words else load_corpus(n_chars, min_count)


class CharWindowLM(ScheduledTask):
    """What the character language models share: the run settings (:class:`ScheduledTask`),
    the corpus of :func:`load_corpus` split by :func:`split_windows` (``vocab``,
    ``vocab_size``, ``train_ids``, ``n_train_starts``, ``val_windows``), batches of
    ``batch_size`` windows of ``context + 1`` characters starting at uniformly random positions
    of the training stream, ``loss`` and ``val_loss`` as ``_loss_on_windows`` on a batch and
    on the fixed validation windows, and bits per character. A subclass defines
    ``_loss_on_windows(params, windows)``. What the text decides (a vocabulary of at least
    two ids, a stream long enough for the windows) is a rule across options
    (:meth:`check_joint`: it reads the text, which is cached)."""

    OPTIONS = {"batch_size": Rule(int, ge=1), "context": Rule(int, ge=1),
               "n_chars": Rule(int, ge=1), "min_count": Rule(int, ge=1),
               "val_frac": Rule(float, gt=0, lt=1), "n_val_windows": Rule(int, ge=1),
               "words": Rule(int, test=lambda w: None if w == 0 or 2 <= w <= 65536 else
                             f"expected 0 (characters) or a vocabulary size in 2..65536, "
                             f"got {w}")}

    @classmethod
    def check_joint(cls, o):
        n_chars, min_count, words = o.get("n_chars"), o.get("min_count"), o.get("words", 0)
        try:
            ids, vocab = _ids(n_chars, min_count, words)
        except ValueError as e:  # more than 255 characters kept
            raise TaskOptionError(cls.name, "min_count", str(e)) from None
        if len(vocab) < 2:  # every token shares id 0: the loss is 0 from the start
            raise TaskOptionError(cls.name, "min_count" if not words else "n_chars",
                                  f"a vocabulary of one: the first {n_chars} characters "
                                  + (f"hold no character {min_count} times; lower min_count "
                                     "or raise n_chars" if not words else "hold no word"))
        try:
            _split_sizes(len(ids), o.get("context"), o.get("val_frac"))
        except ValueError as e:
            raise TaskOptionError(cls.name, "n_chars", f"{e} ({o.get('context')}): raise "
                                  "n_chars or val_frac, or lower context") from None

    def __init__(self, *, context, n_chars, min_count, val_frac, n_val_windows,
                 words: int = 0, **run):
        super().__init__(**run)
        self.context, self.words = int(context), int(words)
        ids, self.vocab = _ids(n_chars, min_count, self.words)
        self.vocab_size = len(self.vocab)
        self.train_ids, self.n_train_starts, self.val_windows = split_windows(
            ids, self.context, val_frac, n_val_windows)

    def train_batch(self, key):
        starts = jax.random.randint(key, (self.batch_size,), 0, self.n_train_starts)
        return self.train_ids[starts[:, None] + jnp.arange(self.context + 1)[None, :]]

    def loss(self, params, batch):
        return self._loss_on_windows(params, batch)

    def val_loss(self, params):
        return self._loss_on_windows(params, self.val_windows)

    def metrics(self, params):
        return {"bits_per_char": self.val_loss(params) / jnp.log(2.0)}


@register("text_lm")
class TextLM(CharWindowLM):
    """Next-character cross-entropy of a context-window MLP language model.

    Args:
      steps, batch_size, seeds: run length, windows per mini-batch, seeds per fitness.
      context: number of previous characters the model sees; embed: embedding width per
        character; hidden: hidden-layer width.
      n_chars: corpus length used; min_count: characters rarer than this share one id.
      val_frac: fraction of the stream (its end) held out; n_val_windows: number of fixed,
        evenly spaced validation windows that ``val_loss`` averages over.
      schedule: ``"constant"`` or ``"cosine"`` lr input.
      max_abs_weight: divergence threshold on the largest |parameter|.

    A batch is ``batch_size`` windows of ``context + 1`` characters starting at uniformly random
    positions of the training stream (drawn with the batch key); the model predicts the last
    character of each window from the first ``context``.

    Defaults (scripts/experiments/calibrate_tasks.py): 300 steps of batch 64 with a constant lr give val
    losses of ~2.35 nats (AdamW start) vs ~2.47 (SGD), 5 standard errors apart over 8 seeds
    (one seed varies by ~1.5%); a cosine lr let SGD tie or beat the AdamW start. One step
    costs ~0.1-0.15 ms on one core (a 300-step seed-run ~30-45 ms).
    """

    OPTIONS = {"embed": Rule(int, ge=1), "hidden": Rule(int, ge=1)}

    def __init__(self, steps: int = 300, batch_size: int = 64, context: int = 8, embed: int = 8,
                 hidden: int = 64, seeds: int = 8, n_chars: int = 200_000, min_count: int = 100,
                 val_frac: float = 0.1, n_val_windows: int = 2048, schedule: str = "constant",
                 max_abs_weight: float = 1e3):
        check_options(type(self), locals())
        super().__init__(steps=steps, batch_size=batch_size, seeds=seeds, schedule=schedule,
                         max_abs_weight=max_abs_weight, context=context, n_chars=n_chars,
                         min_count=min_count, val_frac=val_frac, n_val_windows=n_val_windows)
        self.embed, self.hidden = int(embed), int(hidden)

    def init_params(self, key):
        k0, k1, k2 = jax.random.split(key, 3)
        d_in = self.context * self.embed
        return {
            "emb": jax.random.normal(k0, (self.vocab_size, self.embed), jnp.float32),
            "w1": dense_init(k1, d_in, self.hidden),
            "b1": jnp.zeros((self.hidden,), jnp.float32),
            "w2": dense_init(k2, self.hidden, self.vocab_size),
            "b2": jnp.zeros((self.vocab_size,), jnp.float32),
        }

    def _logits(self, params, windows):
        """Next-character logits of each window's last character from its first ``context``."""
        x = params["emb"][windows[:, :-1]].reshape(windows.shape[0], -1)
        h = jnp.tanh(x @ params["w1"] + params["b1"])
        return h @ params["w2"] + params["b2"]

    def _loss_on_windows(self, params, windows):
        return softmax_cross_entropy(self._logits(params, windows), windows[:, -1])

    def metrics(self, params):
        w = self.val_windows
        pred = jnp.argmax(self._logits(params, w), -1)
        acc = jnp.mean((pred == w[:, -1]).astype(jnp.float32))
        return {"accuracy": acc, **super().metrics(params)}

    def describe(self):
        return (f"{self.name}: {self.steps} steps, batch {self.batch_size}, context {self.context},"
                f" embed {self.embed}, hidden {self.hidden}, vocab {self.vocab_size}, "
                f"{self.seeds} seeds, {self.schedule} lr")
