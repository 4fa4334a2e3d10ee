# optevo discover: best of search-1 (id 33639)
def train(w, g, m, v, lr):
  m = interp(g, m, 0.6199362874031067)
  t0 = square(g)
  t1 = interp(t0, v, 0.217340350151062)
  t2 = sqrt(t1)
  t3 = m / t2
  t4 = lr * 0.0029079534579068422
  update = t3 * t4
  t5 = m * m
  v = col_mean(t5)
  return update, m, v
