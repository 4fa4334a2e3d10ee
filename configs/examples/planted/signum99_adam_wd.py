# signum_adam_wd.py with momentum 0.99 (one scale_const more): the best of these on the
# planted task (binary_regression), where the noisy batches make a long momentum pay.
def train(w, g, m, v, lr):
  g2 = square(g)
  m = interp(g, m, 0.99)
  v = interp(g2, v, 0.999)
  sqrt_v = sqrt(v)
  update = m / sqrt_v
  update = sign(update)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.001
  update = update * lr
  return update, m, v
