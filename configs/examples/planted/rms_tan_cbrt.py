# Found by the Adam check on the one-sided task (configs/planted-adam.yaml at 10^U(0, 4),
# seed 3, 2026-12-07), simplified: RMSprop on g + lr m with the momentum slot m = tan(cbrt(.)),
# a bounded-looking function that is not scale-free (the judge: x100 changes the step by
# 1,364%). On that task it beats tuned Adam on fresh seeds by 2.8 SE.
def train(w, g, m, v, lr):
  t0 = m * lr
  t1 = g + t0
  t2 = expm1(lr)
  t3 = t2 * 0.0061
  t4 = sqrt(t3)
  t5 = t1 * t4
  t6 = interp(g, t1, -6.0)
  t7 = square(t6)
  v = interp(t7, v, 0.999)
  t8 = sqrt(v)
  update = t5 / t8
  t9 = cbrt(t1)
  m = tan(t9)
  return update, m, v
