"""Gravity conventions of logged torques (``ohio_core.data.gravity``) and the topic-map keys that
state them."""

import numpy as np
import pytest

from controllers.robot import ArmModel
from ohio_core.data.gravity import for_controller, rows_with_gravity, shift_gravity
from ohio_core.data.topics import TopicMap, TopicMapError


def test_rows_get_g_of_their_own_state_and_driver_controllers_lose_it_again():
    model = ArmModel()
    rng = np.random.default_rng(0)
    q = np.stack([model.random_configuration(rng) for _ in range(4)])
    q[2] = np.nan
    tau = rng.normal(size=(4, 7))
    rows = rows_with_gravity(tau, q, logged_includes_gravity=False)
    for i in (0, 1, 3):
        np.testing.assert_allclose(rows[i] - tau[i], model.gravity(q[i]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(rows[2], tau[2])                     # no state: left for the row's drop
    np.testing.assert_array_equal(rows_with_gravity(tau, q, logged_includes_gravity=True), tau)
    np.testing.assert_allclose(for_controller(rows, q, "driver"), tau, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(for_controller(rows, q, "controller"), rows)
    assert shift_gravity(np.zeros((0, 7)), np.zeros((0, 7)), 1).shape == (0, 7)


def test_the_gravity_keys_are_booleans_named_with_the_file(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("commanded_effort_includes_gravity: 'no'\n")
    with pytest.raises(TopicMapError) as exc:
        TopicMap.load(path)
    assert str(exc.value).startswith(f"{path}: TopicMap.commanded_effort_includes_gravity must be true or false")
    tm = TopicMap(commanded_effort_includes_gravity=False)
    assert not tm.effort_includes_gravity("commands") and tm.effort_includes_gravity("joint_states")
