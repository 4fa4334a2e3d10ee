# Heavy-ball momentum (Polyak 1964) in the form optax.sgd(learning_rate, momentum=0.9) uses:
#   m <- g + 0.9 * m;  w <- w - lr * m   (no dampening: the trace is not scaled by 1 - 0.9).
# Matches optax.sgd(learning_rate=0.01, momentum=0.9) exactly when exported with
# learning_rate=1.0. Momentum 0.9, learning-rate scale 0.01. v is unused.
def train(w, g, m, v, lr):
  m_decay = m * 0.9
  m = g + m_decay
  lr = lr * 0.01
  update = m * lr
  return update, m, v
