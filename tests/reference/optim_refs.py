"""Reference trajectories for wildsgd's optimizers, from independent implementations.

Run once (outside the repository's build) and commit the JSON it writes:

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    /tmp/torchenv/bin/python tests/reference/optim_refs.py > tests/reference/optim_refs.json

PyTorch's torch.optim is used for every optimizer it has in the same form (SGD,
momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam, Adamax, AdamW), with epsilons
set so that its placement of epsilon (outside the square root) and ours (inside)
agree to float32 precision. NAdam (torch adds a momentum-decay schedule that Ruder's
form does not have) and FTRL-Proximal (not in torch) come from NumPy implementations
of the published equations, in float64.
"""
import json
import math

import numpy as np
import torch

STEPS = 25
W0 = [0.5, -0.3, 0.0]
# A fixed, deterministic gradient sequence per coordinate, of different scales and signs.
GRADS = [[round(math.sin(0.7 * t + c) * (10.0 ** (c - 1)) + 0.05 * (c + 1), 6) for c in range(3)] for t in range(STEPS)]


def run_torch(make, **kw):
    p = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float32))
    opt = make([p], **kw)
    out = []
    for g in GRADS:
        opt.zero_grad()
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        out.append([float(x) for x in p.detach().numpy()])
    return out


def nadam_numpy(lr, b1, b2, eps):
    w = np.array(W0, dtype=np.float64)
    m = np.zeros(3)
    v = np.zeros(3)
    out = []
    for t, g in enumerate(GRADS, start=1):
        g = np.array(g, dtype=np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t)
        vhat = v / (1 - b2 ** t)
        w = w - lr / (np.sqrt(vhat) + eps) * (b1 * mhat + (1 - b1) * g / (1 - b1 ** t))
        out.append(w.tolist())
    return out


def ftrl_numpy(alpha, beta, l1, l2):
    # McMahan et al. 2013, Algorithm 1, per coordinate; w starts at W0 for the first sigma.
    w = np.array(W0, dtype=np.float64)
    z = np.zeros(3)
    n = np.zeros(3)
    out = []
    for g in GRADS:
        g = np.array(g, dtype=np.float64)
        sigma = (np.sqrt(n + g * g) - np.sqrt(n)) / alpha
        z = z + g - sigma * w
        n = n + g * g
        w = np.where(np.abs(z) <= l1, 0.0, -(z - np.sign(z) * l1) / ((beta + np.sqrt(n)) / alpha + l2))
        out.append(w.tolist())
    return out


cases = [
    ("sgd", 0.1, {}, "torch.optim.SGD", run_torch(torch.optim.SGD, lr=0.1)),
    ("momentum", 0.05, {"gamma": 0.9}, "torch.optim.SGD(momentum=0.9)", run_torch(torch.optim.SGD, lr=0.05, momentum=0.9)),
    ("nag", 0.05, {"gamma": 0.9}, "torch.optim.SGD(momentum=0.9, nesterov=True)",
     run_torch(torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True)),
    ("adagrad", 0.1, {"eps": 1e-20}, "torch.optim.Adagrad(eps=1e-20)", run_torch(torch.optim.Adagrad, lr=0.1, eps=1e-20)),
    ("adadelta", 1.0, {"rho": 0.9, "eps": 1e-6}, "torch.optim.Adadelta(rho=0.9, eps=1e-6)",
     run_torch(torch.optim.Adadelta, lr=1.0, rho=0.9, eps=1e-6)),
    ("rmsprop", 0.01, {"gamma": 0.9, "eps": 1e-20}, "torch.optim.RMSprop(alpha=0.9, eps=1e-20)",
     run_torch(torch.optim.RMSprop, lr=0.01, alpha=0.9, eps=1e-20)),
    ("adam", 0.01, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "torch.optim.Adam",
     run_torch(torch.optim.Adam, lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    ("adamax", 0.02, {"beta1": 0.9, "beta2": 0.999}, "torch.optim.Adamax(eps=0)",
     run_torch(torch.optim.Adamax, lr=0.02, betas=(0.9, 0.999), eps=0.0)),
    ("adamw", 0.01, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}, "torch.optim.AdamW(weight_decay=0.1)",
     run_torch(torch.optim.AdamW, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
    ("nadam", 0.01, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "numpy (Ruder's Nadam equation)", nadam_numpy(0.01, 0.9, 0.999, 1e-8)),
    ("ftrl", 0.1, {"beta": 1.0, "l1": 0.0, "l2": 0.0}, "numpy (McMahan et al. 2013, Alg. 1)", ftrl_numpy(0.1, 1.0, 0.0, 0.0)),
    ("ftrl", 0.5, {"beta": 1.0, "l1": 0.3, "l2": 0.2}, "numpy (McMahan et al. 2013, Alg. 1)", ftrl_numpy(0.5, 1.0, 0.3, 0.2)),
]

print(json.dumps({
    "generated_by": "tests/reference/optim_refs.py",
    "torch": torch.__version__,
    "numpy": np.__version__,
    "w0": W0,
    "grads": GRADS,
    "cases": [{"name": n, "lr": lr, "params": p, "source": s, "weights": w} for n, lr, p, s, w in cases],
}, indent=1))
