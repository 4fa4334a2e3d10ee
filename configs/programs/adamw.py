# AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), as near as the
# language allows, with the defaults of optax.adamw: b1 = 0.9, b2 = 0.999, eps = 1e-8,
# weight decay 1e-4 (decoupled: added to the update, then scaled by lr), lr scale 1e-3.
#   m <- 0.9 m + 0.1 g;  v <- 0.999 v + 0.001 g^2;  w <- w - lr * (m / (sqrt(v) + eps) + wd w)
# eps: the language's safe division adds exactly 1e-8 to the denominator, so
#   m / sqrt(v) here IS m / (sqrt(v) + 1e-8), Adam's epsilon outside the square root.
# NOT POSSIBLE: bias correction. It needs the step count t (m / (1 - b1^t), v / (1 - b2^t));
# programs see no step counter and both state slots hold the moments, so the nearest form
# is the uncorrected one: early steps are smaller than real AdamW's (m starts at zero).
def train(w, g, m, v, lr):
  g2 = square(g)
  m = interp(g, m, 0.9)
  v = interp(g2, v, 0.999)
  sqrt_v = sqrt(v)
  update = m / sqrt_v
  wd = w * 0.0001
  update = update + wd
  lr = lr * 0.001
  update = update * lr
  return update, m, v
