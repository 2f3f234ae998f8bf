"""The YAML files shipped in config/controllers load, and say what the code's defaults say."""

from pathlib import Path

import pytest

from controllers.config import OSCConfig, QPConfig, load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "controllers"


@pytest.mark.parametrize("name, expected", [("osc.yaml", OSCConfig(joint_limits=False, singularity_damping=0.0)), ("qp.yaml", QPConfig())])
def test_shipped_config_matches_defaults(name, expected):
    """osc.yaml is the reference work's OSC: the defaults but for the joint-limit filter, off
    (``ohio_core.experiments.configs.ORIGINAL``)."""
    assert load_config(CONFIG_DIR / name) == expected
    if name == "osc.yaml":
        from ohio_core.experiments.configs import ORIGINAL
        assert expected == ORIGINAL


def test_every_shipped_config_loads():
    files = sorted(CONFIG_DIR.glob("*.yaml"))
    assert files
    for f in files:
        load_config(f)


def test_mismatch_configs_ship_as_yaml():
    from ohio_core.experiments.configs import CHANGED, YAML_FILES

    assert set(YAML_FILES) == set(CHANGED)
    for name, config in CHANGED.items():
        assert load_config(CONFIG_DIR / YAML_FILES[name]) == config, name
