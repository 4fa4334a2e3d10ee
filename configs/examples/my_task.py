"""The README's custom task, as a plugin file: ``optevo search configs/quick.yaml --import
configs/examples/my_task.py --set task.name=my_regression``."""

import jax, jax.numpy as jnp
from optevo.proxy_tasks import Task, register

@register("my_regression")
class MyRegression(Task):
    steps, batch_size, seeds = 200, 32, 8

    def __init__(self, dim: int = 16):
        k = jax.random.PRNGKey(0)
        self.X = jax.random.normal(k, (512, dim)); self.y = self.X @ jnp.arange(dim) / dim
    def init_params(self, key):
        return {"w": 0.1 * jax.random.normal(key, self.X.shape[1:])}
    def train_batch(self, key):
        i = jax.random.randint(key, (self.batch_size,), 0, 400)
        return self.X[i], self.y[i]
    def loss(self, params, batch):
        X, y = batch
        return jnp.mean((X @ params["w"] - y) ** 2)
    def val_loss(self, params):
        return self.loss(params, (self.X[400:], self.y[400:]))
