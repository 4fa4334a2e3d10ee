# Muon without momentum: the orthogonalised raw gradient, with Muon's decay and scale. The
# near-miss of the Muon check (configs/planted-muon.yaml): on deep_linear it loses to the tuned
# AdamW start, where Muon beats it (BENCHMARKS.md, "Planted rediscovery").
def train(w, g, m, v, lr):
  update = orthogonalize(g)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.02
  update = update * lr
  return update, m, v
