# Huber-Lion, Lion with a clipped sign: the Lion-K member with a Huber K (Chen, Liang, Liu,
# Liu 2023, "Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts", arXiv
# 2310.05898): K(x) = sum_i h(x_i), h(x) = k x^2 / 2 for |x| <= 1/k and |x| - 1/(2k) beyond,
# k = 1000; grad K = clip(k x, -1, 1): sign(x) where |x| >= 1/k, linear below (k -> inf gives
# Lion). K*(y) = ||y||_2^2 / (2k) if ||y||_inf <= 1, else +inf. It minimises
# f(w) + lambda / (2k) ||w||_2^2 subject to ||w||_inf <= 1/lambda = 100 (lambda = 0.01).
#   c = 0.9 m + 0.1 g;  w <- w - lr * (clip(1000 c, -1, 1) + wd w);  m <- 0.99 m + 0.01 g
# Lion's settings otherwise: b1 = 0.9, b2 = 0.99, weight decay 0.01, learning-rate scale 1e-4.
def train(w, g, m, v, lr):
  c = interp(g, m, 0.9)
  c = c * 1000.0
  update = clip(c, 1.0)
  m = interp(g, m, 0.99)
  wd = w * 0.01
  update = update + wd
  lr = lr * 0.0001
  update = update * lr
  return update, m, v
