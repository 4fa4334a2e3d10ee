# Momentum with decoupled weight decay: the Lion-K member with K(x) = 0.5 ||x||_2^2 (Chen,
# Liang, Liu, Liu 2023, "Lion Secretly Solves Constrained Optimization: As Lyapunov
# Predicts", arXiv 2310.05898): grad K = identity; K*(y) = 0.5 ||y||_2^2, so it minimises
# f(w) + (1/lambda) K*(lambda w) = f(w) + (lambda/2) ||w||_2^2: an L2 regulariser, no
# constraint (lambda = 5e-4, SGD's usual weight decay).
#   m <- 0.9 m + 0.1 g;  w <- w - lr * (m + wd w)
# Momentum 0.9 as an average (b1 = b2 = 0.9), learning-rate scale 0.1: the direction of
# optax.sgd(learning_rate=0.01, momentum=0.9), whose trace is 1/(1 - 0.9) times this average.
def train(w, g, m, v, lr):
  m = interp(g, m, 0.9)
  wd = w * 0.0005
  update = m + wd
  lr = lr * 0.1
  update = update * lr
  return update, m, v
