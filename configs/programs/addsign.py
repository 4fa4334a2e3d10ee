# AddSign (Bello et al. 2017, "Neural Optimizer Search with Reinforcement Learning"):
#   m <- 0.9 m + 0.1 g;  w <- w - lr * (1 + sign(g) * sign(m)) * g
# (alpha = 1, no decay of the sign term). m is the moving average of g including this
# step's gradient. Learning-rate scale 0.01 (an SGD-like step, scaled by 2 or 0). v unused.
def train(w, g, m, v, lr):
  m = interp(g, m, 0.9)
  sign_g = sign(g)
  sign_m = sign(m)
  agree = sign_g * sign_m
  scale = agree + 1.0
  update = scale * g
  lr = lr * 0.01
  update = update * lr
  return update, m, v
