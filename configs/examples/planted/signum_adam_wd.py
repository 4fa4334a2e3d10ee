# The AdamW start with one statement more, update = sign(update) after m / sqrt_v: the sign of
# momentum with the start's decoupled weight decay 0.01, which keeps |x_i| <= 100 (Lion-K).
# One wrap mutation from the start; it solves the planted task (binary_regression).
def train(w, g, m, v, lr):
  g2 = square(g)
  m = interp(g, m, 0.9)
  v = interp(g2, v, 0.999)
  sqrt_v = sqrt(v)
  update = m / sqrt_v
  update = sign(update)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.001
  update = update * lr
  return update, m, v
