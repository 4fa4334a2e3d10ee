# signSGD (Bernstein et al. 2018, "signSGD: Compressed Optimisation for Non-Convex
# Problems"): w <- w - lr * sign(g). Learning-rate scale 1e-4 (sign updates have unit
# magnitude per coordinate, like Lion). m and v are unused.
def train(w, g, m, v, lr):
  update = sign(g)
  lr = lr * 0.0001
  update = update * lr
  return update, m, v
