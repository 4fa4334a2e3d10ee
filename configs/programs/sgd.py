# Plain stochastic gradient descent (Robbins & Monro 1951): w <- w - lr * g.
# Matches optax.sgd(learning_rate=0.01) exactly when exported with learning_rate=1.0.
# Learning-rate scale 0.01. Does not use the state slots m and v (they stay zero).
def train(w, g, m, v, lr):
  lr = lr * 0.01
  update = g * lr
  return update, m, v
