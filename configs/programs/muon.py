# Muon, MomentUm Orthogonalized by Newton-schulz (Jordan et al. 2024, "Muon: An optimizer for
# hidden layers in neural networks"; optax.contrib.muon), with decoupled weight decay: the
# Lion-K member with K = the nuclear norm (Chen, Liang, Liu, Liu 2023, arXiv 2310.05898):
# K(X) = sum over matrix leaves of ||X||_* (the sum of singular values); grad K = U V^T, the
# polar factor of X = U S V^T, which orthogonalize approximates (5 Newton-Schulz steps:
# singular values land in about [0.7, 1.2]); K*(Y) = 0 if ||Y||_op <= 1, else +inf. It
# minimises f(W) subject to ||W||_op <= 1/lambda = 100 (spectral norm, every matrix leaf;
# lambda = 0.01). Vector leaves: orthogonalize is sign (the polar factor of diag(b)), so
# biases get Lion and |b|_inf = ||diag(b)||_op <= 1/lambda.
#   m <- 0.95 m + 0.05 g;  W <- W - lr * (orthogonalize(m) + wd W)
# Matches optax.contrib.muon(learning_rate=0.02, beta=0.95, weight_decay=0.01,
# nesterov=False) exported with learning_rate=1.0, on matrix leaves with rows >= columns
# (its width scale sqrt(max(1, cols / rows)) is 1 there; optax gives vectors to AdamW). Its
# bias correction only rescales m, which the Frobenius normalisation inside orthogonalize
# removes (up to its 1e-8). Nesterov (optax's default) looks ahead to 0.95 m_new + 0.05 g
# = interp(g, m, 0.9025): write that as the update's interp (before bias correction).
def train(w, g, m, v, lr):
  m = interp(g, m, 0.95)
  update = orthogonalize(m)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.02
  update = update * lr
  return update, m, v
