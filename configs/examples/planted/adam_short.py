# Adam with b2 = b1 = 0.9 and no weight decay: one scale_const away from the AdamW start
# (0.999 -> 0.9). Where gradient sizes carry information it matched or beat sign-momentum on
# every synthetic variant tried (BENCHMARKS.md, "Where does sign-momentum win?").
def train(w, g, m, v, lr):
  g2 = square(g)
  m = interp(g, m, 0.9)
  v = interp(g2, v, 0.9)
  s = sqrt(v)
  update = m / s
  update = update * lr
  return update, m, v
