"""One robot description: Pinocchio (controllers.robot) and MuJoCo (ohio_core.envs.arm.scene)
must describe the same arm.

Issue requirement: at 50 random configurations Pinocchio and MuJoCo agree on the 7x7 arm mass
matrix (relative error <= 1e-6), gravity torques (<= 1e-6 N m) and the end-effector (TCP) pose
(<= 1e-9 m). Beyond that: orientation, Coriolis/centrifugal terms, the TCP drift acceleration
dJ/dt qd, limits and actuators, the finger coupling, and that both engines load the same file.
"""

from __future__ import annotations

import re
from pathlib import Path
import shutil
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from controllers import description
from controllers.description import ARM_JOINTS, FINGER_JOINTS, Q_HOME, urdf_path
from controllers.description import FINGER_LOCK, RobotConfigError
from controllers.robot import ArmModel
from ohio_core.envs.arm.scene import TCP_SITE, SceneConfig, build_model, effort_limits
from ohio_core.envs.arm.sim import FINGER_MAX, ArmSim

N_CONFIGS = 50
FRANKA_EFFORT = np.array([87.0] * 4 + [12.0] * 3)


# -- helpers -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def panda() -> ArmModel:
    return ArmModel()


class MjArm:
    """MuJoCo's view of the arm: arm joints set, fingers at the Pinocchio lock value."""

    def __init__(self, model: mujoco.MjModel):
        self.m, self.d = model, mujoco.MjData(model)
        self.qpos = np.array([model.jnt_qposadr[model.joint(j).id] for j in ARM_JOINTS])
        self.dof = np.array([model.jnt_dofadr[model.joint(j).id] for j in ARM_JOINTS])
        self.finger_qpos = np.array([model.jnt_qposadr[model.joint(j).id] for j in FINGER_JOINTS])
        self.finger_dof = np.array([model.jnt_dofadr[model.joint(j).id] for j in FINGER_JOINTS])
        self.tcp = model.site(TCP_SITE).id

    def forward(self, q: np.ndarray, qd: np.ndarray | None = None) -> None:
        mujoco.mj_resetData(self.m, self.d)
        self.d.qpos[self.qpos] = q
        self.d.qpos[self.finger_qpos] = FINGER_LOCK
        self.d.qvel[:] = 0.0
        if qd is not None:
            self.d.qvel[self.dof] = qd
        mujoco.mj_forward(self.m, self.d)

    def mass_matrix(self) -> np.ndarray:
        full = np.zeros((self.m.nv, self.m.nv))
        mujoco.mj_fullM(self.m, self.d, full)
        return full[np.ix_(self.dof, self.dof)]

    def bias(self) -> np.ndarray:
        return self.d.qfrc_bias[self.dof].copy()

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.d.site_xpos[self.tcp].copy(), self.d.site_xmat[self.tcp].reshape(3, 3).copy()


@pytest.fixture(scope="module")
def mj() -> MjArm:
    return MjArm(build_model())


def _urdf_joints(path) -> dict:
    root = ET.parse(path).getroot()
    return {j.get("name"): j for j in root.findall("joint")}


# -- the requirement -------------------------------------------------------------------

def test_mass_gravity_and_tcp_pose_agree_at_50_random_configurations(panda, mj):
    rng = np.random.default_rng(20240501)
    # the full joint range (margin 0), plus the home posture
    qs = [Q_HOME] + [panda.random_configuration(rng, margin=0.0) for _ in range(N_CONFIGS - 1)]
    assert len(qs) == N_CONFIGS
    for q in qs:
        mj.forward(q)
        M_pin, M_mj = panda.mass_matrix(q), mj.mass_matrix()
        assert M_mj.shape == (7, 7)
        rel = np.linalg.norm(M_mj - M_pin) / np.linalg.norm(M_pin)
        assert rel <= 1e-6, f"mass matrix differs at q={q}: relative error {rel:.2e}"
        assert np.abs(M_mj - M_pin).max() <= 1e-6 * np.abs(M_pin).max()

        g_pin, g_mj = panda.gravity(q), mj.bias()          # qfrc_bias at zero velocity = gravity
        assert np.abs(g_mj - g_pin).max() <= 1e-6, f"gravity differs at q={q}: {g_mj - g_pin}"

        p_pin, R_pin = panda.tcp_pose(q)
        p_mj, R_mj = mj.tcp_pose()
        assert np.abs(p_mj - p_pin).max() <= 1e-9, f"TCP position differs at q={q}: {p_mj - p_pin}"
        assert np.abs(R_mj - R_pin).max() <= 1e-9, f"TCP orientation differs at q={q}"
        # and the Pinocchio pose is a proper rotation (guards against comparing garbage to garbage)
        np.testing.assert_allclose(R_pin @ R_pin.T, np.eye(3), atol=1e-12)


def test_gravity_is_not_trivially_zero(panda):
    """The comparison above is meaningful: the arm has weight and the TCP moves with q."""
    g = panda.gravity(np.array([0.0, 0.5, 0.0, -1.5, 0.0, 1.5, 0.0]))
    assert np.abs(g).max() > 5.0
    p1, _ = panda.tcp_pose(Q_HOME)
    p2, _ = panda.tcp_pose(Q_HOME + 0.1)
    assert np.linalg.norm(p1 - p2) > 0.01


def test_kinematics_matches_the_single_quantity_functions(panda, rng):
    q = panda.random_configuration(rng)
    qd = rng.uniform(-1.0, 1.0, 7)
    k = panda.kinematics(q, qd)
    p, R = panda.tcp_pose(q)
    np.testing.assert_allclose(k.p, p, atol=1e-14)
    np.testing.assert_allclose(k.R, R, atol=1e-14)
    np.testing.assert_allclose(k.M, panda.mass_matrix(q), atol=1e-12)
    np.testing.assert_allclose(k.M @ k.Minv, np.eye(7), atol=1e-9)
    np.testing.assert_allclose(panda.kinematics(q, np.zeros(7)).h, panda.gravity(q), atol=1e-12)


def test_coriolis_and_centrifugal_terms_agree(panda, mj):
    """h(q, qd) = C(q, qd) qd + g(q): MuJoCo's qfrc_bias (fingers locked, zero finger velocity)."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        q = panda.random_configuration(rng, margin=0.0)
        qd = rng.uniform(-1.0, 1.0, 7) * panda.qd_max
        mj.forward(q, qd)
        assert np.all(mj.d.qvel[mj.finger_dof] == 0.0)
        h_pin = panda.kinematics(q, qd).h
        h_mj = mj.bias()
        assert np.abs(h_mj - h_pin).max() <= 1e-6, f"bias differs at q={q}, qd={qd}: {h_mj - h_pin}"
        # the velocity-dependent part is there (the test would pass trivially with h = g otherwise)
        assert np.abs(h_pin - panda.gravity(q)).max() > 1e-2


def test_tcp_jacobian_matches_finite_differences_of_the_pose(panda, rng):
    """J is LOCAL_WORLD_ALIGNED with rows (v, w): v = dp/dt, [w]x = dR/dt R^T."""
    eps = 1e-6
    for _ in range(5):
        q = panda.random_configuration(rng)
        qd = rng.uniform(-1.0, 1.0, 7)
        J = panda.kinematics(q, qd).J
        (pp, Rp), (pm, Rm) = panda.tcp_pose(q + eps * qd), panda.tcp_pose(q - eps * qd)
        _, R0 = panda.tcp_pose(q)
        v = (pp - pm) / (2 * eps)
        W = (Rp - Rm) / (2 * eps) @ R0.T
        w = np.array([W[2, 1], W[0, 2], W[1, 0]])
        np.testing.assert_allclose(J @ qd, np.concatenate([v, w]), atol=1e-7)


def test_drift_acceleration_is_the_derivative_of_the_jacobian_along_qd(panda):
    """dJqd = (dJ/dt) qd with qdd = 0, in the same frame as J: the QP uses xdd = J qdd + dJqd.

    Pinocchio's *classical* acceleration is what is wanted: its linear part is d^2p/dt^2 of the
    TCP origin (the spatial acceleration differs from it by w x v), its angular part dw/dt.
    """
    rng = np.random.default_rng(11)
    eps = 1e-6
    for _ in range(10):
        q = panda.random_configuration(rng)
        qd = rng.uniform(-1.0, 1.0, 7) * panda.qd_max
        k = panda.kinematics(q, qd, drift=True)
        assert k.dJqd is not None and k.dJqd.shape == (6,)
        dJ = (panda.kinematics(q + eps * qd, qd).J - panda.kinematics(q - eps * qd, qd).J) / (2 * eps)
        expected = dJ @ qd
        assert np.abs(k.dJqd - expected).max() <= 1e-5, f"dJqd {k.dJqd} vs d/dt(J) qd {expected}"
        assert np.abs(expected).max() > 0.1  # not a trivial comparison

        # linear part: second derivative of the TCP position along q(t) = q + t qd
        h = 1e-4
        p_plus, _ = panda.tcp_pose(q + h * qd)
        p0, _ = panda.tcp_pose(q)
        p_minus, _ = panda.tcp_pose(q - h * qd)
        np.testing.assert_allclose(k.dJqd[:3], (p_plus - 2 * p0 + p_minus) / h**2, atol=1e-5)
    # drift=False leaves it out
    assert panda.kinematics(Q_HOME, np.zeros(7)).dJqd is None


def test_drift_acceleration_vanishes_at_rest(panda):
    k = panda.kinematics(Q_HOME, np.zeros(7), drift=True)
    np.testing.assert_allclose(k.dJqd, np.zeros(6), atol=1e-14)


# -- limits and actuators ----------------------------------------------------------------------

def test_joint_limits_agree_between_urdf_pinocchio_and_mujoco(panda, mj):
    joints = _urdf_joints(urdf_path())
    lower = np.array([float(joints[j].find("limit").get("lower")) for j in ARM_JOINTS])
    upper = np.array([float(joints[j].find("limit").get("upper")) for j in ARM_JOINTS])
    velocity = np.array([float(joints[j].find("limit").get("velocity")) for j in ARM_JOINTS])
    np.testing.assert_array_equal(panda.q_min, lower)
    np.testing.assert_array_equal(panda.q_max, upper)
    np.testing.assert_array_equal(panda.qd_max, velocity)
    m = mj.m
    ids = [m.joint(j).id for j in ARM_JOINTS]
    assert np.all(m.jnt_limited[ids])
    np.testing.assert_allclose(m.jnt_range[ids, 0], panda.q_min, atol=1e-12)
    np.testing.assert_allclose(m.jnt_range[ids, 1], panda.q_max, atol=1e-12)
    # the Panda's elbow never straightens: joint 4 stays negative
    assert panda.q_max[3] == pytest.approx(-0.0698)
    assert np.all(panda.q_min < panda.q_max)


def test_scene_has_seven_torque_motors_at_the_effort_limits(panda, mj):
    m = mj.m
    np.testing.assert_array_equal(panda.tau_max, FRANKA_EFFORT)
    np.testing.assert_array_equal(effort_limits(urdf_path(), ARM_JOINTS), FRANKA_EFFORT)
    motors = [i for i in range(m.nu)
              if m.actuator_trntype[i] == mujoco.mjtTrn.mjTRN_JOINT
              and m.joint(int(m.actuator_trnid[i, 0])).name in ARM_JOINTS]
    assert len(motors) == 7
    for name, limit in zip(ARM_JOINTS, FRANKA_EFFORT):
        a = m.actuator(f"{name}_motor")
        assert m.joint(int(a.trnid[0])).name == name
        assert a.gear[0] == 1.0
        # a pure torque motor: force = ctrl (gain 1, no bias)
        assert a.gainprm[0] == 1.0 and np.all(a.biasprm == 0.0)
        assert a.ctrllimited and a.forcelimited
        np.testing.assert_array_equal(a.ctrlrange, [-limit, limit])
        np.testing.assert_array_equal(a.forcerange, [-limit, limit])
    sim = ArmSim()
    np.testing.assert_array_equal(sim.tau_max, panda.tau_max)


def test_motor_applies_the_commanded_torque_and_clips_at_the_limit(panda):
    sim = ArmSim()
    sim.reset(Q_HOME)
    tau = panda.gravity(Q_HOME) + np.array([1.0, -1.0, 0.5, -0.5, 0.2, -0.2, 0.1])
    sim.control_step(tau)
    np.testing.assert_allclose(sim.tau, tau, atol=1e-12)
    sim.control_step(10.0 * FRANKA_EFFORT * np.sign(np.arange(7) - 3.5))
    np.testing.assert_array_equal(np.abs(sim.tau), FRANKA_EFFORT)


def test_gravity_vector_agrees(panda, mj):
    np.testing.assert_array_equal(mj.m.opt.gravity, panda.model.gravity.linear)
    assert mj.m.opt.gravity[2] == pytest.approx(-9.81)


# -- fingers -----------------------------------------------------------------------------------

def test_fingers_are_coupled_by_the_urdf_mimic_joint():
    """One motor drives both fingers (the mimic equality couples them): they close and open together,
    at most at the finger speed, from and to their limits."""
    sim = ArmSim()
    m = sim.model
    f1, f2 = (m.joint(j).id for j in FINGER_JOINTS)
    couplings = [i for i in range(m.neq) if m.eq_type[i] == mujoco.mjtEq.mjEQ_JOINT
                 and {int(m.eq_obj1id[i]), int(m.eq_obj2id[i])} == {f1, f2}]
    assert len(couplings) == 1
    dofs = [m.jnt_dofadr[j] for j in (f1, f2)]
    panda = ArmModel()
    for command in (1.0, 0.5, 0.49, 0.0):        # binary: from 0.5 up it grasps, below it opens
        grasp = command >= 0.5
        sim.reset(Q_HOME, gripper=0.0 if grasp else 1.0)
        start = sim.data.qpos[sim.qpos_fingers].copy()
        np.testing.assert_array_equal(start, [FINGER_MAX, FINGER_MAX] if grasp else [0.0, 0.0])
        speeds = []
        for step in range(25):
            sim.control_step(panda.gravity(sim.q), gripper=command)
            speeds.append(np.abs(sim.data.qvel[dofs]).max())
            if step == 2:   # both fingers are on their way
                moved = np.abs(start - sim.data.qpos[sim.qpos_fingers])
                assert np.all(moved > 1e-3), f"fingers did not both move: {moved}"
        fingers = sim.data.qpos[sim.qpos_fingers]
        target = 0.0 if grasp else FINGER_MAX
        assert abs(fingers[0] - fingers[1]) < 1e-4, f"fingers not equal: {fingers}"
        np.testing.assert_allclose(fingers, [target, target], atol=1e-3)
        assert sim.finger_opening == pytest.approx(fingers.sum())
        assert max(speeds) <= 1.01 * SceneConfig().finger_speed


def test_reset_places_both_fingers():
    sim = ArmSim()
    sim.reset(Q_HOME, gripper=1.0)
    np.testing.assert_allclose(sim.data.qpos[sim.qpos_fingers], [0.0, 0.0], atol=1e-15)
    sim.reset(Q_HOME)
    np.testing.assert_allclose(sim.data.qpos[sim.qpos_fingers], [FINGER_LOCK, FINGER_LOCK], atol=1e-15)


def test_closing_on_nothing_keeps_fingers_in_their_range():
    sim = ArmSim()
    panda = ArmModel()
    sim.reset(Q_HOME, gripper=0.0)
    lowest = np.inf
    for _ in range(25):
        sim.control_step(panda.gravity(sim.q), gripper=1.0)
        lowest = min(lowest, sim.data.qpos[sim.qpos_fingers].min())
    assert lowest >= -1e-3, f"finger went to {lowest:.4f} m, below its 0 m limit"


# -- one file, two engines ---------------------------------------------------------------------

def test_both_engines_load_the_same_file(panda, tmp_path, monkeypatch):
    """Both default to description.urdf_path(); a changed copy changes both."""
    assert panda.urdf == urdf_path()
    assert urdf_path().is_file() and urdf_path().name == "panda.urdf"

    copy = tmp_path / "urdf"
    shutil.copytree(urdf_path().parent, copy)
    text = (copy / "panda.urdf").read_text()
    # joint 1's effort limit 87 -> 80, link 3's mass changed
    text, n = re.subn(r'(<joint name="panda_joint1".*?<limit effort=")87\.0', r"\g<1>80.0", text, flags=re.S)
    assert n == 1
    text, n = re.subn(r'(<link name="panda_link3">.*?<mass value=")[0-9.]+', r"\g<1>4.5", text, flags=re.S)
    assert n == 1
    (copy / "panda.urdf").write_text(text)
    monkeypatch.setenv("OHIO_URDF_DIR", str(copy))
    assert description.urdf_path() == copy / "panda.urdf"

    model2 = ArmModel()
    mj2 = MjArm(build_model())
    assert model2.urdf == copy / "panda.urdf"
    assert model2.tau_max[0] == 80.0
    np.testing.assert_array_equal(mj2.m.actuator("panda_joint1_motor").ctrlrange, [-80.0, 80.0])
    rng = np.random.default_rng(3)
    q = model2.random_configuration(rng)
    mj2.forward(q)
    np.testing.assert_allclose(mj2.mass_matrix(), model2.mass_matrix(q), rtol=0, atol=1e-9)
    np.testing.assert_allclose(mj2.bias(), model2.gravity(q), atol=1e-6)
    # and the change is visible (the copy was really loaded)
    assert np.abs(model2.gravity(q) - panda.gravity(q)).max() > 1e-3


def test_a_robot_file_naming_a_missing_urdf_is_refused_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "panda.urdf"
    robot = tmp_path / "arm.yaml"
    robot.write_text((Path(description.robot_file("panda"))).read_text().replace("../../urdf/panda.urdf", str(missing)))
    with pytest.raises(RobotConfigError, match=re.escape(f"{robot}: URDF not found: {missing}")):
        ArmModel(robot)


def test_scene_missing_urdf_raises_file_not_found_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "panda.urdf"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        build_model(urdf=missing)
