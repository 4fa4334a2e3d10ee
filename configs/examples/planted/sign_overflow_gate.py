# Found by the sign check with 4 islands (seed 1, 2026-12-06), before overflow counted as
# divergence: the sign of momentum, gated by float32 overflow. exp2(exp10((0.066 w)^6...))
# is inf once |w| passes about 1.21, just inside the planted box (100/81), so m / inf = 0 and
# the weight stops there: the box learned as a switch, not kept by decay. The engines now
# count a run where any statement's value is not finite as diverged, so this program
# diverges wherever its switch fires (tests/test_engine.py).
def train(w, g, m, v, lr):
  m = interp(g, m, 0.766)
  t0 = interp(w, -0.003, 0.066)
  t1 = square(t0)
  t2 = cube(t1)
  t3 = exp10(t2)
  t4 = exp2(t3)
  t5 = m / t4
  t6 = sign(t5)
  update = t6 * 0.0544
  return update, m, v
