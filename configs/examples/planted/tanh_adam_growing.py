# Found by the Adam check (configs/planted-adam.yaml at grad_scale 0, seed 2 of the ema and
# lr-grid arm), simplified, judged adaptive: momentum over the root of a sum of squared
# momentum that grows by 1.7% a step (so the step also decays), bounded by tanh
# (BENCHMARKS.md, "The Adam check").
def train(w, g, m, v, lr):
  t0 = m * -0.7
  m = g + t0
  t1 = tanh(0.05)
  t2 = m * t1
  t3 = square(t0)
  v = interp(t3, v, 1.017)
  t4 = sqrt(v)
  t5 = t2 / t4
  update = tanh(t5)
  return update, m, v
