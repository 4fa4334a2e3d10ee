# Found by the Adam check on the one-sided task (configs/planted-adam.yaml at 10^U(0, 4),
# seed 1, 2026-12-07), simplified: RMSprop whose second moment averages a square that mixes
# g with sqrt(g) (interp with a weight of -0.075), so not scale-free per coordinate (the
# judge: "global", per-coordinate change 18%). On that task it ties tuned Adam on fresh seeds.
def train(w, g, m, v, lr):
  t0 = cbrt(lr)
  t1 = max(t0, 0.12)
  t2 = square(t1)
  t3 = g * t2
  t4 = g * v
  t5 = cbrt(t4)
  t6 = g + t5
  t7 = square(t6)
  t8 = sqrt(t6)
  t9 = interp(g, t8, -0.0754)
  t10 = sqrt(t9)
  t11 = t8 / t10
  t12 = t7 * t11
  v = interp(t12, v, 0.99)
  t13 = sqrt(v)
  update = t3 / t13
  return update, m, v
