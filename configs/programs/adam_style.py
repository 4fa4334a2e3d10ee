# The initial program of every search in Chen et al. 2023, "Symbolic Discovery of
# Optimization Algorithms" (arXiv 2302.06675): AdamW without bias correction or epsilon
# (division is the safe form, which adds 1e-8 to the denominator).
# b1 = 0.9, b2 = 0.999, decoupled weight decay 0.01, learning-rate scale 1e-3.
# Identical, statement for statement, to the paper's listing of this initial program.
def train(w, g, m, v, lr):
  g2 = square(g)
  m = interp(g, m, 0.9)
  v = interp(g2, v, 0.999)
  sqrt_v = sqrt(v)
  update = m / sqrt_v
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.001
  update = update * lr
  return update, m, v
