"""The mismatch experiment's expert rows: the scripted expert's own closed loop through each config."""

import pytest

from ohio_core.experiments.configs import ORIGINAL, deployment_configs
from ohio_core.experiments.mismatch import MismatchConfig, run
from ohio_core.learning.evaluate import evaluate_expert
from ohio_core.policies.scripted import PACE


def test_the_expert_under_its_own_controller_is_the_100_of_the_score():
    res = evaluate_expert("reach", ORIGINAL, episodes=3, seed=11, pace=PACE, horizon=60)
    assert res.normalized == pytest.approx([100.0 * (r - res.reference["random_return"])
                                            / (res.reference["expert_return"] - res.reference["random_return"])
                                            for r in res.returns])
    assert sum(res.normalized) / 3 == pytest.approx(100.0, abs=1e-9)


def test_the_expert_knows_the_deployment_controller_and_its_pace_matters():
    wide = deployment_configs(["kp_ori50_wide"])["kp_ori50_wide"]
    paced = evaluate_expert("reach", wide, episodes=2, seed=11, pace=PACE, horizon=60)
    full = evaluate_expert("reach", wide, episodes=2, seed=11, pace=1.0, horizon=60)
    assert full.returns != paced.returns


def test_expert_rows_need_no_data_and_no_training(tmp_path):
    cfg = MismatchConfig(task="reach", eval_episodes=1, configs=("damping3", "kp_ori50_wide"),
                         methods=("expert", "expert_full_pace"), workers=1)
    result = run(cfg, tmp_path, progress=False)
    assert result["data"]["episodes"] == 0 and result["models"] == {} and result["accounts"] == {}
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "models").exists()
    for c in ("damping3", "kp_ori50_wide"):
        assert set(result["configs"][c]) == {"expert", "expert_full_pace"}
    assert result["configs"]["damping3"]["expert"] != result["configs"]["damping3"]["expert_full_pace"]
    assert result["configs"]["damping3"]["expert"] != result["configs"]["kp_ori50_wide"]["expert"]
