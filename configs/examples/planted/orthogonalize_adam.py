# One wrap mutation from the AdamW start: AdamW's direction m / sqrt(v), orthogonalised. The
# Muon check's judge counts it (orthogonalize reads the momentum); how it scores on deep_linear
# is in BENCHMARKS.md ("Planted rediscovery").
def train(w, g, m, v, lr):
  g2 = square(g)
  m = interp(g, m, 0.9)
  v = interp(g2, v, 0.999)
  sqrt_v = sqrt(v)
  update = m / sqrt_v
  update = orthogonalize(update)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.001
  update = update * lr
  return update, m, v
