# Found by the Adam check (configs/planted-adam.yaml, seed 1, 2026-12-07) and simplified on
# the 8 fitness seeds that selected it (tolerance 1%): a running mean of |g| normalizes
# g + tan(sinh(sinh(sin(arcsinh g)^9))), an odd term that matters only near |g| = 1..100.
# Removing the term costs 3.1% on those seeds and gains on unseen ones (proxy_tasks/seeds.py).
def train(w, g, m, v, lr):
  t0 = arcsinh(g)
  t1 = sin(t0)
  t2 = cube(t1)
  t3 = cube(t2)
  t4 = sinh(t3)
  t5 = sinh(t4)
  t6 = tan(t5)
  t7 = g + t6
  t8 = arcsin(lr)
  t9 = arcsin(t8)
  t10 = arcsin(t9)
  t11 = tan(t10)
  t12 = exp10(t11)
  t13 = t12 * 0.003
  t14 = abs(t7)
  v = interp(t14, v, 0.98)
  t15 = t13 / v
  t16 = t7 * t15
  t17 = tan(t16)
  update = tan(t17)
  return update, m, v
