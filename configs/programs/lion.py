# Lion, EvoLved Sign Momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
# Algorithms", arXiv 2302.06675), as the paper writes it after simplification (its
# Program 1, "Discovered optimizer Lion"):
#   c = 0.9 m + 0.1 g;  w <- w - lr * (sign(c) + wd w);  m <- 0.99 m + 0.01 g
# b1 = 0.9, b2 = 0.99, weight decay 0.01, learning-rate scale 1e-4. Matches
# optax.lion(learning_rate=1e-4, b1=0.9, b2=0.99, weight_decay=0.01) exactly when exported
# with learning_rate=1.0. v is unused.
# Lion-K (Chen, Liang, Liu, Liu 2023, "Lion Secretly Solves Constrained Optimization: As
# Lyapunov Predicts", arXiv 2310.05898): the member with K(x) = ||x||_1, grad K = sign;
# K*(y) = 0 if ||y||_inf <= 1, else +inf. It minimises f(w) + (1/lambda) K*(lambda w):
# f(w) subject to the bound constraint ||w||_inf <= 1/lambda = 100 (lambda = 0.01).
def train(w, g, m, v, lr):
  update = interp(g, m, 0.9)
  update = sign(update)
  m = interp(g, m, 0.99)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.0001
  update = update * lr
  return update, m, v
