# AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
# Observed Gradients"), without bias correction:
#   m <- 0.9 m + 0.1 g;  s <- 0.999 s + 0.001 (g - m)^2 + eps;  w <- w - lr * m / (sqrt(s) + eps)
# b1 = 0.9, b2 = 0.999, learning-rate scale 1e-3, no weight decay (as optax.adabelief).
# eps inside the state is 1e-16 (the paper's and optax's default); the eps of the final
# division is the safe division's 1e-8 (the paper uses 1e-16 there too; the language
# cannot divide without its 1e-8). NOT POSSIBLE: bias correction (no step counter).
def train(w, g, m, v, lr):
  m = interp(g, m, 0.9)
  belief = g - m
  belief2 = square(belief)
  v = interp(belief2, v, 0.999)
  v = v + 1e-16
  sqrt_v = sqrt(v)
  update = m / sqrt_v
  lr = lr * 0.001
  update = update * lr
  return update, m, v
