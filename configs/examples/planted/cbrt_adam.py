# Adam (b1 = b2 = 0.9) on cbrt(g): the cube root compresses gradient sizes by 3 in log scale.
def train(w, g, m, v, lr):
  g = cbrt(g)
  g2 = square(g)
  m = interp(g, m, 0.9)
  v = interp(g2, v, 0.9)
  s = sqrt(v)
  update = m / s
  update = update * lr
  return update, m, v
