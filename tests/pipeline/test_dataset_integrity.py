"""Datasets hold what their account says and load back as continuous actions.

d3rlpy guesses the action space from the first piece of episode (whole-number actions make it
discrete) and stores no piece of one step that ends without a terminal state. Every dataset this
project writes is continuous, every step the account says was written is in the file, and a file
that holds anything else is refused when written and when loaded.
"""

import json

import numpy as np
import pytest

from controllers.base import make_controller
from controllers.config import OSCConfig
from controllers.rebalancing import RebalancingConfig, Rebalancer
from ohio_core.cli.main import main
from ohio_core.data.collect import collect
from ohio_core.learning.algos import TrainConfig
from ohio_core.learning.finetune import FinetuneConfig, finetune
from ohio_core.learning.policy import PolicyMismatchError, load_policy
from ohio_core.learning.train import train
from ohio_core.pipeline.baselines import flat_transitions
from ohio_core.lazy import d3rlpy as import_d3rlpy
from ohio_core.pipeline.dataset import DatasetMismatchError, load_dataset, read_episodes, save_dataset
from ohio_core.pipeline.relabel import SINGLE_STEP_PIECE, HighLevelData, relabel
from ohio_core.routing.datasets import relabel_routing
from ohio_core.routing.env import RoutingEnv, RoutingLog, rollout
from ohio_core.routing.policies import make_routing_policy
from ohio_core.routing.scenario import synthetic

BC = TrainConfig(algo="bc", steps=4, epochs=1, batch_size=4)


def synthetic_data(lengths, first_actions=None, terminal_pieces=()) -> HighLevelData:
    """Pieces of episode of ``lengths`` steps, each ending in a timeout (a terminal state for the
    indices in ``terminal_pieces``); ``first_actions`` replaces the first piece's actions."""
    rng = np.random.default_rng(1)
    n, dim = sum(lengths), 3
    ends = np.cumsum(lengths) - 1
    terminals, timeouts = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for i, e in enumerate(ends):
        (terminals if i in terminal_pieces else timeouts)[e] = 1.0
    actions = rng.uniform(-1, 1, (n, dim)).astype(np.float32)
    if first_actions is not None:
        actions[:lengths[0]] = first_actions
    return HighLevelData(observations=rng.normal(size=(n, 5)).astype(np.float32), actions=actions,
                         rewards=rng.normal(size=n).astype(np.float32), terminals=terminals, timeouts=timeouts,
                         episode=np.repeat(np.arange(len(lengths)), lengths), residual=np.zeros(n),
                         obs_layout=[["obs", 5]])


def file_steps(h5) -> int:
    return sum(e.size() for e in read_episodes(h5))


@pytest.mark.parametrize("first", ["zeros", "plus_minus_one"])
def test_whole_number_actions_load_as_continuous_and_train(tmp_path, first, rng):
    """A first piece of episode whose actions are whole numbers (a fleet that holds still: zeros; goals
    clipped to the range's ends: +-1) is still a continuous dataset that a continuous algorithm trains on."""
    d3rlpy = import_d3rlpy()
    whole = np.zeros((6, 3)) if first == "zeros" else rng.choice([-1.0, 1.0], size=(6, 3))
    data = synthetic_data([6, 5, 7], first_actions=whole)
    h5, _ = save_dataset(data, tmp_path / "d", {"task": "reach", "k": 5})
    buffer, meta = load_dataset(h5)
    assert buffer.dataset_info.action_space == d3rlpy.constants.ActionSpace.CONTINUOUS
    assert buffer.dataset_info.action_size == meta["action_dim"] == 3
    np.testing.assert_array_equal(np.concatenate([e.actions for e in buffer.episodes]), data.actions)
    res = train(buffer, meta, BC, tmp_path / "m", progress=False)
    policy = load_policy(res.model)
    assert res.transitions == meta["transitions_with_next_state"] == 18 - 3
    assert policy.act(data.observations[0]).shape == (3,)


def test_models_and_fine_tuning_refuse_an_action_size_they_were_not_made_for(tmp_path):
    h5, _ = save_dataset(synthetic_data([6, 5]), tmp_path / "d", {"task": "reach", "k": 5})
    buffer, meta = load_dataset(h5)
    res = train(buffer, meta, TrainConfig(algo="iql", steps=2, epochs=1, batch_size=4), tmp_path / "m", progress=False)
    other = synthetic_data([4, 4])
    other.actions = np.concatenate([other.actions, other.actions[:, :1]], 1)
    h5_other, _ = save_dataset(other, tmp_path / "d4", {"task": "reach", "k": 5})
    with pytest.raises(PolicyMismatchError, match="holds actions of size 4, model .* acts with 3"):
        finetune(res.model, FinetuneConfig(steps=2), tmp_path / "ft", dataset=h5_other, progress=False)
    res.sidecar.write_text(json.dumps({**json.loads(res.sidecar.read_text()), "action_dim": 4}))
    with pytest.raises(PolicyMismatchError, match="acts with 3 continuous actions, its sidecar says 4"):
        load_policy(res.model)


def test_cli_trains_on_goals_clipped_to_the_range_ends(tmp_path, capsys):
    """The reported case: a controller whose output scale makes every goal clip to +-1."""
    cfg = tmp_path / "t.yaml"
    cfg.write_text("type: osc\noutput_max: 1.0e-9\n")
    bag, ds, model = tmp_path / "b", tmp_path / "ds", tmp_path / "m"
    assert main(["collect", "--task", "reach", "--policy", "expert", "--episodes", "2", "--horizon", "20",
                 "--seed", "7", "--out", str(bag)]) == 0
    assert main(["relabel", str(bag), "--controller", str(cfg), "--out", str(ds)]) == 0
    buffer, meta = load_dataset(ds)
    assert set(np.unique(np.concatenate([e.actions[:, :6] for e in buffer.episodes]))) <= {-1.0, 1.0}
    capsys.readouterr()
    assert main(["train", str(ds), "--algo", "bc", "--steps", "3", "--out", str(model), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["transitions"] == meta["transitions_with_next_state"] == 8 - 2 and load_policy(model).action_dim == 6


def test_relabel_drops_single_step_pieces_and_the_file_holds_its_account(tmp_path):
    """Segments 4 and 6 of episode 0 spoiled: pieces [4, 1, 5] there; the lone segment 5 has no next
    state, is dropped and counted, and the file holds every step the account says was written."""
    traj = collect("reach", "expert", OSCConfig(), episodes=2, seed=0, horizon=60)
    traj.tau = traj.tau.copy()
    traj.tau[[5 * 4 + 1, 5 * 6 + 2]] = np.nan
    data = relabel(traj, make_controller(OSCConfig()), 5, "analytical")
    acc = data.account
    assert acc["segments_dropped"] == {"inverse: non_finite": 2, SINGLE_STEP_PIECE: 1}
    assert acc["segments_written"] == len(data.rewards) == 24 - 3 and acc["pieces_ended_by_drop"] == 1
    assert data.drops.counts[SINGLE_STEP_PIECE] == 1
    h5, _ = save_dataset(data, tmp_path / "d", {"task": "reach", "k": 5})
    buffer, meta = load_dataset(h5)
    assert meta["transitions"] == file_steps(h5) == acc["segments_written"]
    assert meta["pieces"] == len(buffer.episodes) == 3                       # [0-3], [7-11], episode 1
    assert buffer.transition_count == meta["transitions_with_next_state"] == 21 - 3
    np.testing.assert_array_equal(np.concatenate([e.observations for e in buffer.episodes]), data.observations)


def test_flat_baseline_drops_single_step_pieces(tmp_path):
    traj = collect("reach", "expert", OSCConfig(), episodes=1, seed=0, horizon=12)
    traj.tau = traj.tau.copy()
    traj.tau[[3, 5, 10]] = np.nan                 # rows 4 and 11 (the episode's last) stand alone
    data = flat_transitions(traj, make_controller(OSCConfig()).tau_max)
    assert data.account["segments_dropped"] == {"non-finite torque or observation": 3, SINGLE_STEP_PIECE: 2}
    h5, _ = save_dataset(data, tmp_path / "flat", {"task": "reach", "level": "torque", "k": 1})
    assert file_steps(h5) == data.account["segments_written"] == 12 - 5


def test_writing_refuses_pieces_the_file_would_not_hold(tmp_path):
    """Pieces [4, 1, 3]: d3rlpy would store [4, 3]; the read-back check refuses it and leaves no file."""
    with pytest.raises(DatasetMismatchError, match=r"7 transitions \(the data written: 8\).*single step"):
        save_dataset(synthetic_data([4, 1, 3]), tmp_path / "d", {"task": "reach"})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetMismatchError, match="nothing to store"):
        save_dataset(synthetic_data([1, 1]), tmp_path / "d", {"task": "reach"})


def test_a_single_step_piece_ending_in_a_terminal_state_is_kept(tmp_path):
    data = synthetic_data([4, 1, 3], terminal_pieces=(1,))
    h5, _ = save_dataset(data, tmp_path / "d", {"task": "reach"})
    buffer, meta = load_dataset(h5)
    assert file_steps(h5) == meta["transitions"] == 8 and meta["pieces"] == 3
    assert buffer.transition_count == meta["transitions_with_next_state"] == 3 + 1 + 2


def test_account_and_sidecar_must_agree_with_the_file(tmp_path):
    data = synthetic_data([4, 3])
    data.account = {"segments_written": 8}
    with pytest.raises(DatasetMismatchError, match="account says 8 transitions written, the data hold 7"):
        save_dataset(data, tmp_path / "d", {"task": "reach"})
    data.account = {"segments_written": 7}
    h5, js = save_dataset(data, tmp_path / "d", {"task": "reach"})
    meta = json.loads(js.read_text())
    js.write_text(json.dumps({**meta, "transitions": 9}))
    with pytest.raises(DatasetMismatchError, match=rf"{h5}: the file holds 7 transitions \(its sidecar: 9\)"):
        load_dataset(h5)


@pytest.fixture(scope="module")
def city():
    return synthetic(9, horizon=12, seed=3)


def lp_log(city, policy, episodes, seed) -> RoutingLog:
    env = RoutingEnv(city, Rebalancer(RebalancingConfig()))
    log = rollout(env, policy if callable(policy) else make_routing_policy(policy, city), episodes, seed=seed)
    log.meta["obs_layout"] = env.layout.as_list()
    return log


def test_routing_fleet_that_holds_still_trains(city, tmp_path):
    """The first episode asks for the idle vehicles where they are: no flows, goals exactly 0."""
    idle = RoutingEnv(city, Rebalancer(RebalancingConfig())).layout.idle
    still = lp_log(city, lambda obs: np.asarray(obs)[idle], 1, 5)
    log = RoutingLog.concatenate([still, lp_log(city, "demand_proportional", 1, 6)])
    data = relabel_routing(log, city.travel_time, "ohio")
    assert not log.flows[:12].any() and not data.actions[:12].any() and data.actions[12:].any()
    h5, _ = save_dataset(data, tmp_path / "r", {"task": "routing", "k": 1, "regions": 9})
    buffer, meta = load_dataset(h5)
    res = train(buffer, meta, BC, tmp_path / "m", progress=False)
    assert res.transitions == 24 - 2 and load_policy(res.model).act(data.observations[0]).shape == (9,)


def test_routing_drops_single_step_pieces(city, tmp_path):
    """No idle vehicles at steps 3 and 5 (the inverse cannot use them): step 4 stands alone."""
    log = lp_log(city, "demand_proportional", 2, 5)
    log.idle, log.flows = log.idle.copy(), log.flows.copy()
    log.idle[[3, 5]], log.flows[[3, 5]] = 0, 0
    data = relabel_routing(log, city.travel_time, "ohio")
    assert data.account["dropped"] == {"inverse: ill_posed": 2, SINGLE_STEP_PIECE: 1}
    assert data.account["transitions_written"] == len(data.rewards) == 24 - 3
    h5, _ = save_dataset(data, tmp_path / "r", {"task": "routing", "k": 1})
    assert file_steps(h5) == data.account["transitions_written"]
    assert len(read_episodes(h5)) == 3 and not list(tmp_path.glob(".*tmp*"))
