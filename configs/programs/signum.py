# Signum, signSGD with momentum (Bernstein et al. 2018, "signSGD: Compressed Optimisation
# for Non-Convex Problems"): m <- 0.9 m + 0.1 g;  w <- w - lr * sign(m).
# Momentum 0.9, learning-rate scale 1e-4. v is unused.
def train(w, g, m, v, lr):
  m = interp(g, m, 0.9)
  update = sign(m)
  lr = lr * 0.0001
  update = update * lr
  return update, m, v
