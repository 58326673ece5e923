"""The benchmark's JAX row: the same network as a jit-compiled JAX training step (forward, gradient,
SGD update in one XLA program), from specc's checked layers and specc's initial weights. Images
run channels last inside (XLA's CPU convolutions are NHWC); the Affine after them flattens in
specc's (C, H, W) order, so the weights mean the same and `agreement` can compare predictions.

Imported by benchmarks/bench.py only when JAX is installed (pip install jax); set XLA_FLAGS
before the import for the thread count (bench.py does).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _layers(net):
    """[(kind, args, param names, in_shape)] of every layer before the loss."""
    return [(c.spec.type, c.layer.args, list(c.params), c.in_shape) for c in net.checked.layers[:-1]]


def _forward(layers, params, x, train, key):
    """Scores (N, classes) of x (N, H, W, C) for images or (N, D); batch statistics and dropout
    when train."""
    for kind, a, names, in_shape in layers:
        if kind == "Affine":
            w, b = params[names[0]], params[names[1]]
            if x.ndim == 4:  # (N, H, W, C) -> specc's flat (C, H, W) order
                x = jnp.transpose(x, (0, 3, 1, 2))
            x = x.reshape(x.shape[0], -1) @ w + b
        elif kind == "Convolution":
            w, b = params[names[0]], params[names[1]]  # (F, C, kh, kw)
            pad = a["pad"]
            x = lax.conv_general_dilated(x, jnp.transpose(w, (2, 3, 1, 0)), (a["stride"],) * 2,
                                         [(pad, pad), (pad, pad)], dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
        elif kind == "Pooling":
            s, st, pad = a["size"], a["stride"], a["pad"]
            x = lax.reduce_window(x, -jnp.inf, lax.max, (1, s, s, 1), (1, st, st, 1),
                                  [(0, 0), (pad, pad), (pad, pad), (0, 0)])
        elif kind == "BatchNorm":
            gamma, beta = params[names[0]], params[names[1]]
            axes = tuple(range(x.ndim - 1))
            if train:
                mean, var = jnp.mean(x, axes), jnp.var(x, axes)
            else:  # specc's initial running statistics
                mean, var = jnp.zeros_like(gamma), jnp.ones_like(gamma)
            x = (x - mean) / jnp.sqrt(var + a["eps"]) * gamma + beta
        elif kind == "Dropout":
            if train:
                key, sub = jax.random.split(key)
                keep = jax.random.bernoulli(sub, 1 - a["ratio"], x.shape)
                x = jnp.where(keep, x / (1 - a["ratio"]), 0) if a["scale"] == "train" else jnp.where(keep, x, 0)
            elif a["scale"] != "train":
                x = x * (1 - a["ratio"])
        elif kind == "ReLU":
            x = jnp.maximum(x, 0)
        elif kind == "Sigmoid":
            x = jax.nn.sigmoid(x)
        elif kind == "Tanh":
            x = jnp.tanh(x)
        elif kind != "Flatten":
            raise ValueError(f"no JAX row for {kind}")
    return x


def _channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def jax_step(net, lr, dtype):
    """step(x, t) -> loss: one jit-compiled SGD step of the network in JAX, on specc's initial weights."""
    layers = _layers(net)
    params = {k: jnp.asarray(v, dtype) for k, v in net.params.items()}

    def loss_of(p, x, t, key):
        scores = _forward(layers, p, x, True, key)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(scores), t[:, None], axis=1))

    @jax.jit
    def update(p, x, t, key):
        key, sub = jax.random.split(key)
        loss, g = jax.value_and_grad(loss_of)(p, x, t, sub)
        return {k: v - lr * g[k] for k, v in p.items()}, loss, key

    state = {"p": params, "key": jax.random.PRNGKey(0)}
    cache = {}

    def step(x, t):
        if id(x) not in cache:  # the batch on the device once, as the other rows hold theirs
            cache.clear()
            cache[id(x)] = (jnp.asarray(_channels_last(x), dtype), jnp.asarray(t, jnp.int32))
        jx, jt = cache[id(x)]
        state["p"], loss, state["key"] = update(state["p"], jx, jt, state["key"])
        return float(loss)  # waits for the step
    return step


def agreement(net, x, dtype) -> float:
    """Largest difference between specc's predict and the JAX forward (inference mode) on the same
    weights: whether the JAX row runs the same network."""
    params = {k: jnp.asarray(v, dtype) for k, v in net.params.items()}
    ours = net.predict(x)
    theirs = np.asarray(_forward(_layers(net), params, jnp.asarray(_channels_last(x), dtype), False, None))
    return float(np.max(np.abs(ours - theirs)))
