"""A learned dynamics model of the arm, for state matching without a known plant model.

It predicts the state one control period ahead under a torque held over the period::

    x = (q, qd),   x_{t+1} = x_t + s_y * f((x_t, tau_t) standardized) + m_y

with (m_y, s_y) the mean and standard deviation of the training deltas x_{t+1} - x_t. ``kind``:

- ``mlp``: f is an MLP of (q, qd, tau);
- ``affine``: f = A(q, qd) tau_n + b(q, qd), an MLP head giving a state-dependent linear model in
  the torque (the rigid-body form: qdd = M(q)^-1 (tau - h(q, qd)) is affine in tau).

Training data: the transitions (row i -> row i + 1 within an episode) of ``Trajectories``, split by
episode into training and validation sets (no episode in both). Adam on the mean-squared error of
the standardized delta, learning rate on a cosine schedule over ``epochs``; the weights of the
epoch with the lowest validation loss are kept, and training stops after ``patience`` epochs
without improvement. Seeded; ``save``/``load_dynamics`` keep the weights, the statistics and the
history. ``step`` runs in float64, batched, so the
state-matching inverse (``inverse.state_matching``, argument ``dynamics``) can use it in place of
Pinocchio.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ohio_core import lazy

KINDS = ("mlp", "affine")
NJ = 7


@dataclass(frozen=True)
class DynamicsConfig:
    kind: str = "mlp"
    hidden: tuple = (256, 256)
    epochs: int = 200
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.2        # share of episodes held out for validation
    patience: int = 20               # epochs without a better validation loss before stopping
    seed: int = 0
    threads: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"DynamicsConfig.kind must be one of {KINDS}, got {self.kind!r}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"DynamicsConfig.hidden must be positive layer widths, got {self.hidden}")
        for name in ("epochs", "batch_size", "patience", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DynamicsConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"DynamicsConfig.val_fraction must be in (0, 1), got {self.val_fraction}")
        if not (self.lr > 0 and self.weight_decay >= 0):
            raise ValueError(f"DynamicsConfig.lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}


@dataclass
class Transitions:
    """One control period each: state, torque held over it, the state after it, the episode."""

    q: np.ndarray        # (N, 7)
    qd: np.ndarray       # (N, 7)
    tau: np.ndarray      # (N, 7)
    q_next: np.ndarray   # (N, 7)
    qd_next: np.ndarray  # (N, 7)
    episode: np.ndarray  # (N,)

    def __len__(self) -> int:
        return len(self.q)

    def take(self, mask: np.ndarray) -> "Transitions":
        return Transitions(self.q[mask], self.qd[mask], self.tau[mask], self.q_next[mask], self.qd_next[mask],
                           self.episode[mask])


def transitions(traj) -> Transitions:
    """Row i -> row i + 1 of the same episode, consecutive steps, all finite."""
    i = np.arange(len(traj) - 1)
    ok = (traj.episode[i + 1] == traj.episode[i]) & (traj.step[i + 1] == traj.step[i] + 1) & ~traj.last[i]
    ok &= np.isfinite(traj.q[i]).all(1) & np.isfinite(traj.qd[i]).all(1) & np.isfinite(traj.tau[i]).all(1)
    ok &= np.isfinite(traj.q[i + 1]).all(1) & np.isfinite(traj.qd[i + 1]).all(1)
    i = i[ok]
    return Transitions(traj.q[i], traj.qd[i], traj.tau[i], traj.q[i + 1], traj.qd[i + 1], traj.episode[i])


def split_by_episode(episode: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Validation mask: a seeded random ``val_fraction`` of the episodes (at least one), whole."""
    eps = np.unique(episode)
    if len(eps) < 2:
        raise ValueError(f"need at least 2 episodes to hold some out for validation, got {len(eps)}")
    n_val = min(len(eps) - 1, max(1, int(round(val_fraction * len(eps)))))
    val_eps = np.random.default_rng(seed).choice(eps, n_val, replace=False)
    return np.isin(episode, val_eps)


def _mlp(n_in: int, hidden: tuple, n_out: int):
    """A torch MLP: ``hidden`` SiLU layers, a linear output."""
    torch = lazy.torch()
    layers, width = [], n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.SiLU()]
        width = h
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


def _net(kind: str, hidden: tuple):
    """The torch module of f: its MLP as ``body`` (of (x, tau) for ``mlp``; of x, giving A and b, for
    ``affine``)."""
    n_out = 2 * NJ
    body = _mlp(3 * NJ, hidden, n_out) if kind == "mlp" else _mlp(2 * NJ, hidden, n_out * NJ + n_out)
    return lazy.torch().nn.ModuleDict({"body": body})


def _forward(net, kind: str, x, u):
    """f: standardized (x, tau) in, standardized delta out (tensors)."""
    if kind == "mlp":
        return net["body"](lazy.torch().cat([x, u], -1))
    out = net["body"](x)
    A = out[..., :2 * NJ * NJ].reshape(*x.shape[:-1], 2 * NJ, NJ)
    return (A @ u[..., None])[..., 0] + out[..., 2 * NJ * NJ:]


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads, then restore the previous count."""
    torch = lazy.torch()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return a.mean(0), np.maximum(a.std(0), 1e-8)


class LearnedDynamics:
    """A trained model: ``step(q, qd, tau) -> (q_next, qd_next)`` over batches (N, 7), float64."""

    def __init__(self, config: DynamicsConfig, state: dict, stats: dict, history: dict):
        self.config, self.stats, self.history = config, {k: np.asarray(v, float) for k, v in stats.items()}, history
        self._state = {k: v.detach().clone() for k, v in state.items()}
        self.net = _net(config.kind, config.hidden)
        self.net.load_state_dict(state)
        self.net = self.net.double().eval()

    def step(self, q: np.ndarray, qd: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self.stats
        x = (np.concatenate([q, qd], -1) - s["x_mean"]) / s["x_std"]
        u = (np.asarray(tau, float) - s["u_mean"]) / s["u_std"]
        torch = lazy.torch()
        with torch.no_grad(), torch_threads(self.config.threads):
            y = _forward(self.net, self.config.kind, torch.from_numpy(np.ascontiguousarray(x)),
                         torch.from_numpy(np.ascontiguousarray(u))).numpy()
        nxt = np.concatenate([q, qd], -1) + y * s["y_std"] + s["y_mean"]
        return nxt[..., :NJ], nxt[..., NJ:]

    def save(self, path: str | Path) -> Path:
        path = Path(path).with_suffix(".pt")
        path.parent.mkdir(parents=True, exist_ok=True)
        lazy.torch().save({"config": self.config.to_dict(), "state": self._state,
                           "stats": {k: v.tolist() for k, v in self.stats.items()}, "history": self.history}, path)
        return path


def load_dynamics(path: str | Path) -> LearnedDynamics:
    blob = lazy.torch().load(Path(path).with_suffix(".pt"), weights_only=False)
    return LearnedDynamics(DynamicsConfig(**blob["config"]), blob["state"], blob["stats"], blob["history"])


def train_dynamics(data: Transitions, config: DynamicsConfig = DynamicsConfig(),
                   progress: bool = False) -> LearnedDynamics:
    """Fit on the training episodes, keep the weights with the lowest validation loss."""
    if len(data) < 2:
        raise ValueError(f"need transitions to train on, got {len(data)}")
    t0 = time.perf_counter()
    torch = lazy.torch()
    with torch_threads(config.threads):
        torch.manual_seed(config.seed)
        val = split_by_episode(data.episode, config.val_fraction, config.seed)
        x = np.concatenate([data.q, data.qd], -1)
        y = np.concatenate([data.q_next, data.qd_next], -1) - x
        stats = {}
        stats["x_mean"], stats["x_std"] = _stats(x[~val])
        stats["u_mean"], stats["u_std"] = _stats(data.tau[~val])
        stats["y_mean"], stats["y_std"] = _stats(y[~val])

        def norm(a: np.ndarray, m: str):
            return torch.from_numpy(((a - stats[m + "_mean"]) / stats[m + "_std"]).astype(np.float32))

        X, U, Y = norm(x, "x"), norm(data.tau, "u"), norm(y, "y")
        tr, va = torch.from_numpy(np.flatnonzero(~val)), torch.from_numpy(np.flatnonzero(val))
        net = _net(config.kind, config.hidden)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs)
        gen = torch.Generator().manual_seed(config.seed)
        history = {"train": [], "val": []}
        best, best_state, since = float("inf"), copy.deepcopy(net.state_dict()), 0
        for epoch in range(config.epochs):
            net.train()
            total = 0.0
            for b in tr[torch.randperm(len(tr), generator=gen)].split(config.batch_size):
                loss = torch.mean((_forward(net, config.kind, X[b], U[b]) - Y[b]) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            sched.step()
            net.eval()
            with torch.no_grad():
                v = float(torch.mean((_forward(net, config.kind, X[va], U[va]) - Y[va]) ** 2))
            history["train"].append(total / len(tr))
            history["val"].append(v)
            if progress:
                print(f"  dynamics epoch {epoch + 1}: train {total / len(tr):.3e}  val {v:.3e}", flush=True)
            if v < best:
                best, best_state, since = v, copy.deepcopy(net.state_dict()), 0
            else:
                since += 1
                if since >= config.patience:
                    break
        history.update({"best_epoch": int(np.argmin(history["val"])) + 1, "best_val": best,
                        "train_transitions": int(len(tr)), "val_transitions": int(len(va)),
                        "val_episodes": int(len(np.unique(data.episode[val]))), "seconds": time.perf_counter() - t0})
        return LearnedDynamics(config, best_state, stats, history)


def prediction_error(model, data: Transitions) -> dict:
    """RMS one-period prediction error of q (rad) and qd (rad/s) on ``data``."""
    q, qd = model.step(data.q, data.qd, data.tau)
    return {"q_rms": float(np.sqrt(np.mean((q - data.q_next) ** 2))),
            "qd_rms": float(np.sqrt(np.mean((qd - data.qd_next) ** 2)))}
