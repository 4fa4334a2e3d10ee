# RMSProp (Tieleman & Hinton 2012, Coursera lecture 6.5) in the exact form of
# optax.rmsprop(learning_rate=1e-3, decay=0.9, eps=1e-8, eps_in_sqrt=False):
#   v <- 0.9 v + 0.1 g^2;  w <- w - lr * g * (1 / (sqrt(v) + eps))
# eps = 1e-8 comes from the safe reciprocal, which adds 1e-8 to the denominator. optax
# multiplies g by the reciprocal rather than dividing, so this program does too (bitwise
# equal). Decay 0.9, learning-rate scale 1e-3. m is unused.
def train(w, g, m, v, lr):
  g2 = square(g)
  v = interp(g2, v, 0.9)
  sqrt_v = sqrt(v)
  inv = reciprocal(sqrt_v)
  update = inv * g
  lr = lr * 0.001
  update = update * lr
  return update, m, v
