# Momentum of signs: the sign first, then the average (majority vote over ~10 steps). Where
# gradient sizes are noise it beats the sign of momentum (signum, Lion).
def train(w, g, m, v, lr):
  s = sign(g)
  m = interp(s, m, 0.9)
  update = m * lr
  return update, m, v
