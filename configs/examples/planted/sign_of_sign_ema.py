# The sign of a momentum of signs: sign(interp(sign(g), m)).
def train(w, g, m, v, lr):
  s = sign(g)
  m = interp(s, m, 0.9)
  u = sign(m)
  update = u * lr
  return update, m, v
