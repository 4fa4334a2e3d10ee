# The sign of the raw gradient with the AdamW start's decoupled weight decay 0.01: the same
# box as signum_adam_wd.py without momentum. On binary_regression with all rows and no noise
# it is enough; the planted task's noisy batches make it lose.
def train(w, g, m, v, lr):
  update = sign(g)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.001
  update = update * lr
  return update, m, v
