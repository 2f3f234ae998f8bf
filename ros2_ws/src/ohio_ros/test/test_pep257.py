"""Docstring conventions (pep257, ament preset) over this package and the launch files."""

from pathlib import Path

from ament_pep257.main import main
import pytest

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.mark.pep257
def test_pep257():
    paths = [str(PACKAGE / 'ohio_ros'), str(PACKAGE / 'test'), str(PACKAGE / 'setup.py'),
             str((PACKAGE / 'launch').resolve())]
    rc = main(argv=paths)
    assert rc == 0, 'Found code style errors / warnings'
