# Normalised momentum with decoupled weight decay: the Lion-K member with K(x) = the sum over
# parameter leaves of ||x_leaf||_2 (Chen, Liang, Liu, Liu 2023, "Lion Secretly Solves
# Constrained Optimization: As Lyapunov Predicts", arXiv 2310.05898; K = L2 norm, per leaf as
# layer-wise normalised SGD does): grad K = x_leaf / ||x_leaf||_2 (`norm` is each leaf's L2
# norm; the division is safe, + 1e-8); K*(y) = 0 if every ||y_leaf||_2 <= 1, else +inf. It
# minimises f(w) subject to ||w_leaf||_2 <= 1/lambda = 100 for every leaf (lambda = 0.01).
#   c = 0.9 m + 0.1 g;  w <- w - lr * (c / ||c|| + wd w);  m <- 0.99 m + 0.01 g
# Lion's b1 = 0.9, b2 = 0.99 and weight decay 0.01; learning-rate scale 0.01 (each leaf moves
# by about 0.01 lr in L2 norm per step). v is unused.
def train(w, g, m, v, lr):
  c = interp(g, m, 0.9)
  n = norm(c)
  update = c / n
  m = interp(g, m, 0.99)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.01
  update = update * lr
  return update, m, v
