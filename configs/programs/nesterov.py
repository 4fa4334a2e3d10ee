# Nesterov momentum (Nesterov 1983; Sutskever et al. 2013) in the form
# optax.sgd(learning_rate, momentum=0.9, nesterov=True) uses:
#   m <- g + 0.9 * m;  w <- w - lr * (g + 0.9 * m)   (m already updated).
# Momentum 0.9, learning-rate scale 0.01. v is unused.
def train(w, g, m, v, lr):
  m_decay = m * 0.9
  m = g + m_decay
  look_ahead = m * 0.9
  update = g + look_ahead
  lr = lr * 0.01
  update = update * lr
  return update, m, v
