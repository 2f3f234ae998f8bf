"""ohio_core.plotting: the Agg pyplot and saving a figure."""

from __future__ import annotations

from ohio_core import plotting


def test_save_writes_a_png_and_closes_the_figure(tmp_path):
    plt = plotting.pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = tmp_path / "figure.png"
    assert plotting.save(fig, path, dpi=50) == path
    assert path.is_file()
    assert path.read_bytes().startswith(b"\x89PNG")
    assert fig.number not in plt.get_fignums()
