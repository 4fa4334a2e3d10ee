# Found by the Adam check (configs/planted-adam.yaml at grad_scale 0, seed 4 of the ema and
# lr-grid arm), simplified: the step divided by a running mean of |sin g - 0.5 m|. It beats
# tuned Adam on fresh seeds there, but `sin` is close to linear only at that task's gradient
# sizes, so the judge's x100 test says it is not scale-free (BENCHMARKS.md, "The Adam check").
def train(w, g, m, v, lr):
  t0 = sin(g)
  t1 = -0.5 * m
  t2 = t0 + t1
  t3 = arctan(t2)
  t4 = sqrt(lr)
  t5 = t3 * t4
  t6 = abs(t3)
  t7 = tan(t6)
  v = interp(t7, v, 0.986)
  update = t5 / v
  m = interp(t3, t0, -0.5)
  return update, m, v
