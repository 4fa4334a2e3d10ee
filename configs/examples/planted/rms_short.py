# RMSprop with a short average (0.5) and no momentum: g / sqrt(v) is bounded when v holds the
# current g^2, a soft sign of the raw gradient.
def train(w, g, m, v, lr):
  g2 = square(g)
  v = interp(g2, v, 0.5)
  s = sqrt(v)
  update = g / s
  update = update * lr
  return update, m, v
