"""flake8 with the ROS 2 (ament) configuration, over this package and the launch files."""

from pathlib import Path

from ament_flake8.main import main_with_errors
import pytest

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.mark.flake8
def test_flake8():
    paths = [str(PACKAGE / 'ohio_ros'), str(PACKAGE / 'test'), str(PACKAGE / 'setup.py'),
             str((PACKAGE / 'launch').resolve())]
    rc, errors = main_with_errors(argv=paths)
    assert rc == 0, f'Found {len(errors)} code style errors / warnings:\n' + '\n'.join(errors)
