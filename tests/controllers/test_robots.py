"""Every robot of config/robots: one description, loaded alike by Pinocchio and MuJoCo, tracked by both
controllers, inverted exactly; robot files are validated at the edge."""

import hashlib
import re
import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from controllers.base import make_controller
from controllers.config import ConfigError, OSCConfig, QPConfig
from controllers.description import (DEFAULT_ROBOT, RobotConfigError, available_robots, load_robot, robot_file,
                                     robots_dirs)
from controllers.goals import GOAL_POSITION_BOUND, PoseGoal, so3_exp
from controllers.osc import OSC
from controllers.qp import QP
from controllers.robot import POSITION_BOUND, VELOCITY_BOUND, ArmModel
from ohio_core.bench.controllers import inverse_round_trip, step_tracking
from ohio_core.envs.arm.env import GoalArmEnv, TorqueArmEnv
from ohio_core.envs.arm.sim import ArmSim
from ohio_core.envs.arm.tasks import JOINT_SLOTS, obs_slices

ROBOTS = ["panda", "ur5", "xarm7"]
JOINTS = {"panda": 7, "ur5": 6, "xarm7": 7}


@pytest.fixture(scope="module", params=ROBOTS)
def arm(request):
    return request.param, ArmModel(request.param), ArmSim(robot=request.param)


def test_the_shipped_robots_are_found_by_name():
    assert set(ROBOTS) <= set(available_robots())
    assert DEFAULT_ROBOT == "panda"
    for name in ROBOTS:
        robot = load_robot(name)
        assert robot.name == name and robot.n == JOINTS[name] and robot.urdf.is_file()


def test_the_default_model_is_the_panda_as_before():
    default, panda = ArmModel(), ArmModel("panda")
    assert default.joint_names == panda.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    np.testing.assert_array_equal(default.home, [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, np.pi / 4])
    np.testing.assert_array_equal(default.tau_max, [87, 87, 87, 87, 12, 12, 12])


def _mujoco_terms(sim: ArmSim, q: np.ndarray):
    sim.reset(q)
    full = np.zeros((sim.model.nv, sim.model.nv))
    mujoco.mj_fullM(sim.model, sim.data, full)
    return full[np.ix_(sim.qvel_arm, sim.qvel_arm)], sim.data.qfrc_bias[sim.qvel_arm].copy(), sim.tcp_pose()


def test_pinocchio_and_mujoco_agree_on_mass_matrix_gravity_and_tcp(arm):
    name, model, sim = arm
    assert model.nq == sim.n == JOINTS[name]
    np.testing.assert_array_equal(sim.tau_max, model.tau_max)
    rng = np.random.default_rng(1)
    for _ in range(5):
        q = model.random_configuration(rng)
        M, g, (p, R) = _mujoco_terms(sim, q)
        np.testing.assert_allclose(M, model.mass_matrix(q), rtol=0, atol=1e-9)
        np.testing.assert_allclose(g, model.gravity(q), rtol=0, atol=1e-9)       # at rest, bias = gravity
        pp, RR = model.tcp_pose(q)
        np.testing.assert_allclose(p, pp, atol=1e-12)
        np.testing.assert_allclose(R, RR, atol=1e-12)


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_each_controller_tracks_step_goals_on_every_arm(arm, kind):
    name, model, _ = arm
    controller = make_controller(OSCConfig() if kind == "osc" else QPConfig(), model)
    assert controller.config.rest_posture == tuple(model.home)          # null rest posture: the robot's home
    t = step_tracking(controller, goals=4, seconds=1.5, seed=2)
    assert t["pos_err_m_max"] < 2e-3 and t["ori_err_rad_max"] < 1e-2, t


def test_the_closed_loop_never_commands_beyond_the_limits(arm):
    name, model, _ = arm
    rng = np.random.default_rng(5)
    sim = ArmSim(robot=name)
    for controller in (OSC(model), QP(model)):
        sim.reset()
        p0, R0 = sim.tcp_pose()
        goal = PoseGoal(p0 + rng.uniform(-0.3, 0.3, 3), so3_exp(rng.uniform(-1, 1, 3)) @ R0)
        for _ in range(50):
            tau = controller.act(sim.q, sim.qd, goal)
            assert tau.shape == (model.nq,) and np.all(np.abs(tau) <= model.tau_max + 1e-9)
            sim.control_step(tau)


@pytest.mark.parametrize("method", ["analytical", "qp"])
def test_the_inverse_round_trips_to_1e8_on_every_arm(arm, method):
    name, model, _ = arm
    controller = OSC(model) if method == "analytical" else QP(model)
    r = inverse_round_trip(controller, method, segments=60, seed=3)
    assert r["segments"] > 40 and r["solved"] == 1.0
    assert r["pos_err_m_max"] < 1e-8 and r["ori_err_rad_max"] < 1e-8, r


def test_reach_observations_use_the_joint_slots_of_every_arm(arm):
    name, model, _ = arm
    env = GoalArmEnv(OSC(model), "reach")
    obs, _ = env.reset(seed=0)
    s, n = obs_slices(), model.nq
    np.testing.assert_array_equal(obs[s["q"]][:n], env.sim.q)
    np.testing.assert_array_equal(obs[s["q"]][n:], np.zeros(JOINT_SLOTS - n))
    np.testing.assert_array_equal(obs[s["qd"]][n:], np.zeros(JOINT_SLOTS - n))
    assert TorqueArmEnv("reach", robot=name).action_space.shape == (n,)


def test_tasks_that_need_a_gripper_refuse_an_arm_without_one():
    with pytest.raises(ValueError, match="the lift task needs a gripper; robot ur5 has none"):
        GoalArmEnv(OSC(ArmModel("ur5")), "lift")


def test_an_env_refuses_a_controller_made_for_another_arm():
    with pytest.raises(ValueError, match="made for robot ur5"):
        GoalArmEnv(OSC(ArmModel("ur5")), "reach", robot="panda")


def test_a_panda_config_with_seven_joint_values_is_refused_on_a_six_joint_arm():
    with pytest.raises(ConfigError, match="rest_posture has 7 entries; the arm has 6 joints"):
        OSC(ArmModel("ur5"), OSCConfig(rest_posture=list(ArmModel().home)))


# -- robot files: written by users, validated at the edge --------------------------------------------


def write_robot(tmp_path, base="ur5", **changes) -> Path:
    """A copy of a shipped robot file with top-level keys changed (None removes one)."""
    data = yaml.safe_load(robot_file(base).read_text())
    data["urdf"] = str(load_robot(base).urdf)
    data.pop("urdf_sha256", None)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / f"{base}_custom.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_payload_is_added_to_both_models_alike(tmp_path):
    path = write_robot(tmp_path, payload={"mass": 1.5, "com": [0.0, 0.0, 0.05]})
    model, sim, bare = ArmModel(path), ArmSim(robot=path), ArmModel("ur5")
    q = bare.home
    M, g, _ = _mujoco_terms(sim, q)
    np.testing.assert_allclose(M, model.mass_matrix(q), atol=1e-9)
    np.testing.assert_allclose(g, model.gravity(q), atol=1e-9)
    assert abs(model.gravity(q)[1] - bare.gravity(q)[1]) > 1.0          # 1.5 kg at the flange weighs on the shoulder


def test_a_tcp_placed_by_link_and_offset_is_the_same_in_both_models(tmp_path):
    path = write_robot(tmp_path, tcp={"link": "wrist_3_link", "xyz": [0.0, 0.1, 0.02], "rpy": [0.3, 0.0, 1.0]})
    model, sim = ArmModel(path), ArmSim(robot=path)
    q = model.random_configuration(np.random.default_rng(0))
    _, _, (p, R) = _mujoco_terms(sim, q)
    pp, RR = model.tcp_pose(q)
    np.testing.assert_allclose(p, pp, atol=1e-12)
    np.testing.assert_allclose(R, RR, atol=1e-12)


def test_limits_in_the_robot_file_override_the_urdf(tmp_path):
    path = write_robot(tmp_path, limits={"tau_max": 20.0, "q_min": -3.0, "q_max": 3.0})
    model, sim = ArmModel(path), ArmSim(robot=path)
    np.testing.assert_array_equal(model.tau_max, np.full(6, 20.0))
    np.testing.assert_array_equal(sim.tau_max, np.full(6, 20.0))
    np.testing.assert_array_equal(model.q_min, np.full(6, -3.0))
    np.testing.assert_allclose(sim.model.jnt_range[sim.model.actuator_trnid[sim.act_arm, 0]], [[-3.0, 3.0]] * 6)


@pytest.mark.parametrize("changes, message", [
    ({"joints": ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint"],
      "home": [0.0] * 5}, "5 arm joints; a 6-D pose task needs at least 6"),
    ({"jionts": []}, r"unknown key\(s\) \['jionts'\]"),
    ({"home": [0.0] * 7}, "home must be a scalar or a list of 6 numbers"),
    ({"home": [0.0, 0.0, 4.0, 0.0, 0.0, 0.0]}, "home .* is outside the joint limits"),
    ({"tcp": {"frame": "no_such_frame"}}, "frame 'no_such_frame' \\(tcp.frame\\) not in the description"),
    ({"tcp": {"frame": "tool0", "link": "wrist_3_link"}}, "not both or neither"),
    ({"joints": ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint",
                 "nope"]}, r"joints \['nope'\] not in the description"),
    ({"urdf": "missing/arm.urdf"}, "URDF not found"),
    ({"gripper": {"joints": ["elbow_joint"]}}, "gripper joints .* are arm joints"),
    ({"payload": {"mass": -1.0}}, "payload.mass must be > 0"),
    ({"name": None}, "missing key 'name'"),
])
def test_a_bad_robot_file_is_one_error_naming_the_file(tmp_path, changes, message):
    path = write_robot(tmp_path, **changes)
    with pytest.raises(RobotConfigError, match=message) as info:
        ArmModel(path)
    assert str(path) in str(info.value) or "URDF" not in message


def test_a_damaged_urdf_is_refused_by_its_digest_and_by_the_parser(tmp_path):
    robot = load_robot("ur5")
    copy = tmp_path / "ur5.urdf"
    shutil.copy(robot.urdf, copy)
    text = copy.read_text()
    copy.write_text(text[: len(text) // 2])                                # truncated
    path = write_robot(tmp_path, urdf=str(copy), urdf_sha256=hashlib.sha256(robot.urdf.read_bytes()).hexdigest())
    with pytest.raises(RobotConfigError, match=re.escape(f"{copy}: SHA-256")):
        ArmModel(path)
    path = write_robot(tmp_path, urdf=str(copy))
    with pytest.raises(RobotConfigError, match=re.escape(f"{copy}: not a readable URDF")):
        ArmModel(path)


def test_unknown_robot_names_list_the_known_ones():
    with pytest.raises(RobotConfigError, match=r"unknown robot 'ur10'.*'panda'"):
        load_robot("ur10")


def test_a_package_uri_resolves_against_the_package_path(tmp_path, monkeypatch):
    share = tmp_path / "share" / "my_arm_description" / "urdf"
    share.mkdir(parents=True)
    shutil.copy(load_robot("ur5").urdf, share / "arm.urdf")
    monkeypatch.setenv("OHIO_PACKAGE_PATH", str(tmp_path / "share"))
    path = write_robot(tmp_path, urdf="package://my_arm_description/urdf/arm.urdf")
    assert ArmModel(path).urdf == share / "arm.urdf"
    monkeypatch.setenv("OHIO_ROBOT_PATH", str(tmp_path))
    assert load_robot("ur5_custom").urdf == share / "arm.urdf"              # found by name on OHIO_ROBOT_PATH
    assert robots_dirs()[0] == tmp_path


def test_step_goal_tracking_error_is_measured_against_the_goal():
    """The tracking figure is not vacuous: with the arm held (zero torque), the error is the step."""
    class Still:
        config = OSCConfig()
        model = ArmModel("ur5")

        def act(self, q, qd, goal):
            return self.model.gravity(q)

    t = step_tracking(Still(), goals=3, seconds=0.2, seed=0)
    assert t["pos_err_m_median"] == pytest.approx(0.05, abs=1e-3)


#: random states and goals per arm and controller in the fuzz below
FUZZ_STATES = 100_000


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_fuzz_1e5_states_and_goals_per_arm_give_finite_torques_within_limits(arm, kind):
    """States anywhere within the physical bounds (joints up to pi past their limits, velocities up to
    100 x theirs, a tenth exactly on the bounds) and goals up to 10 m away in any orientation: every
    command is finite and within the arm's torque limits, and the law's unclipped torque is finite
    for the OSC (the QP's is its solve's)."""
    name, model, _ = arm
    rng = np.random.default_rng(51)
    controller = OSC(model) if kind == "osc" else QP(model)
    n = model.nq
    lo, hi = model.q_min - POSITION_BOUND, model.q_max + POSITION_BOUND
    q = rng.uniform(lo, hi, (FUZZ_STATES, n))
    qd = VELOCITY_BOUND * model.qd_max * rng.uniform(-1.0, 1.0, (FUZZ_STATES, n))
    edge = rng.random(FUZZ_STATES) < 0.1
    q[edge] = np.where(rng.random((edge.sum(), n)) < 0.5, lo, hi)
    qd[edge] = VELOCITY_BOUND * model.qd_max * rng.choice([-1.0, 1.0], (edge.sum(), n))
    p = GOAL_POSITION_BOUND * rng.uniform(-1.0, 1.0, (FUZZ_STATES, 3)) * rng.random((FUZZ_STATES, 1)) ** 4
    w = rng.normal(size=(FUZZ_STATES, 3)) * 2.0
    worst = 0.0
    for i in range(FUZZ_STATES):
        out = controller.compute(q[i], qd[i], PoseGoal(p[i], so3_exp(w[i])))
        assert np.isfinite(out.tau).all(), f"{name} {kind} state {i}"
        worst = max(worst, float(np.max(np.abs(out.tau) / model.tau_max)))
        if kind == "osc":
            assert np.isfinite(out.tau_unclipped).all(), f"{name} osc state {i}"
    assert 0.99 < worst <= 1.0          # the extremes reach the limits, none goes past them


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_the_closed_loop_keeps_every_arm_within_its_joint_limits(arm, kind):
    """The closed-loop fuzz of test_controllers on every arm: 20 episodes of 1 s from random states
    near home toward random goals, a third of them out of reach (1.0 to 1.3 m from the base), orientations
    up to 1 rad off: every joint within its position limits and every torque within its limits. Both
    controllers with their defaults (the OSC with its joint-limit filter, no goal box)."""
    name, model, sim = arm
    rng = np.random.default_rng(36)
    n = model.nq
    for episode in range(20):
        q0 = np.clip(model.home + rng.uniform(-0.3, 0.3, n), model.q_min + 0.1, model.q_max - 0.1)
        p0, R0 = model.tcp_pose(q0)
        if episode % 3 == 0:
            direction = np.array([np.cos(a := rng.uniform(-1.0, 1.0)), np.sin(a), rng.uniform(-0.2, 0.5)])
            p = rng.uniform(1.0, 1.3) * direction / np.linalg.norm(direction)
        else:
            p = p0 + rng.uniform(-0.3, 0.3, 3)
        goal = PoseGoal(p, so3_exp(rng.uniform(-1.0, 1.0, 3) / np.sqrt(3)) @ R0)
        controller = make_controller(OSCConfig() if kind == "osc" else QPConfig(), model)
        sim.reset(q0)
        for _ in range(50):
            tau = controller.act(sim.q, sim.qd, goal)
            assert np.all(np.abs(tau) <= model.tau_max + 1e-9) and np.all(np.isfinite(tau))
            sim.control_step(tau)
            worst = np.max(np.maximum(sim.q - model.q_max, model.q_min - sim.q))
            assert worst <= 0.0, f"{name} {kind} episode {episode}: a joint {worst:.4f} rad past its limit"
