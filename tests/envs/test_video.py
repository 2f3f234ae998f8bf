"""Rollout videos: frames from the offscreen renderer, written as MP4 or GIF and read back."""

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from controllers.base import make_controller
from controllers.config import OSCConfig
from ohio_core.cli.main import main
from ohio_core.envs.arm.env import GoalArmEnv
from ohio_core.envs.arm.tasks import TaskConfig
from ohio_core.policies.scripted import ReachExpert
from ohio_core.video import FRAME_SIZE, VideoError, real_time_fps, rollout_frames, side_by_side, write_video


@pytest.fixture(scope="module")
def frames():
    env = GoalArmEnv(make_controller(OSCConfig()), TaskConfig(name="reach", horizon=40))
    run, _ = rollout_frames(env, ReachExpert(), seed=0, every=2)
    assert real_time_fps(env, every=2) == pytest.approx(5.0)        # a frame every 2 goals of 5 periods
    return run


def test_an_episode_is_recorded_every_few_steps_and_the_arm_moves(frames):
    assert len(frames) == 1 + 8 // 2
    assert frames[0].shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3) and frames[0].dtype == np.uint8
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 0.5     # not a still picture


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_videos_read_back_with_every_frame(frames, tmp_path, suffix):
    both = side_by_side([frames, frames[:5]], ["a", "b"])
    assert len(both) == len(frames) and both[0].shape[1] == 2 * FRAME_SIZE[0]
    path = write_video(tmp_path / f"v{suffix}", both)
    if suffix == ".gif":
        with Image.open(path) as gif:
            assert gif.n_frames == len(both) and gif.size == (2 * FRAME_SIZE[0], FRAME_SIZE[1])
    else:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        assert tuple(meta["size"]) == (2 * FRAME_SIZE[0], FRAME_SIZE[1])
        assert sum(1 for _ in reader) == len(both)


def test_bad_video_requests_are_refused(frames, tmp_path):
    with pytest.raises(VideoError, match="must end in .mp4 or .gif"):
        write_video(tmp_path / "v.avi", frames)
    with pytest.raises(VideoError, match="no frames"):
        write_video(tmp_path / "v.mp4", [])
    with pytest.raises(VideoError, match="one non-empty run"):
        side_by_side([frames, []], ["a", "b"])


def test_eval_records_the_evaluated_episodes(tmp_path, capsys):
    bag, ds, model = tmp_path / "bag", tmp_path / "ds", tmp_path / "m"
    assert main(["collect", "--task", "reach", "--policy", "expert", "--episodes", "1", "--horizon", "20",
                 "--out", str(bag)]) == 0
    assert main(["relabel", str(bag), "--workers", "1", "--out", str(ds)]) == 0
    assert main(["train", str(ds), "--algo", "bc", "--steps", "5", "--out", str(model)]) == 0
    capsys.readouterr()
    video = tmp_path / "eval.gif"
    assert main(["eval", str(model), "--episodes", "1", "--horizon", "12", "--video", str(video)]) == 0
    assert f"wrote {video} (4 frames, 1 episode(s))" in capsys.readouterr().out
    with Image.open(video) as gif:
        assert gif.n_frames == 4
    with pytest.raises(SystemExit, match="must end in .mp4 or .gif"):
        main(["eval", str(model), "--episodes", "1", "--video", str(tmp_path / "v.avi")])
