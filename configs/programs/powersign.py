# PowerSign (Bello et al. 2017, "Neural Optimizer Search with Reinforcement Learning"):
#   m <- 0.9 m + 0.1 g;  w <- w - lr * e^(sign(g) * sign(m)) * g
# (base alpha = e, no decay of the exponent). m is the moving average of g including this
# step's gradient. Learning-rate scale 0.01 (an SGD-like step, scaled by e or 1/e). v unused.
def train(w, g, m, v, lr):
  m = interp(g, m, 0.9)
  sign_g = sign(g)
  sign_m = sign(m)
  agree = sign_g * sign_m
  scale = exp(agree)
  update = scale * g
  lr = lr * 0.01
  update = update * lr
  return update, m, v
