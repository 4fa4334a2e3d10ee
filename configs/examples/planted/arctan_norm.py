# Found by the Adam check at grad_scale 2 (configs/planted-adam.yaml, seed 0 of the ema and
# lr-grid arm, 2026-12-07), simplified: the step divided by a running mean of |arctan(0.8 m)|,
# m itself a bounded function of g. On that task it beats tuned Adam on fresh seeds (0.00473
# against 0.00545); with each seed's gradients x 10^U(-4, 4) it ties Adam, and with the
# noise also x3 it loses to it (BENCHMARKS.md, "The Adam check at grad_scale 2"). Bounded
# functions of g: the judge's x100 test says it is not scale-free.
def train(w, g, m, v, lr):
  t0 = m * 0.8
  t1 = arctan(t0)
  t2 = negative(t1)
  t3 = g + t2
  t4 = arctan(t3)
  t5 = sinh(t4)
  m = sinh(t5)
  t6 = sqrt(lr)
  t7 = m * t6
  t8 = abs(t1)
  t9 = tan(t8)
  v = interp(t9, v, 0.99)
  t10 = t7 / v
  update = arctan(t10)
  return update, m, v
