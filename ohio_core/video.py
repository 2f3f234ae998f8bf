"""Rollout videos: frames from MuJoCo's offscreen renderer, written as MP4 (ffmpeg from the
``imageio-ffmpeg`` wheel) or GIF (Pillow), chosen by the file's suffix.

``rollout_frames`` records an episode of a policy in an arm env every ``every`` env steps (a goal
policy's step is k control periods: at k = 5, 10 frames per simulated second);
``side_by_side`` puts several runs next to each other with a title over each, the shorter ones
holding their last frame; ``write_video`` writes them.
"""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageDraw

VIDEO_SUFFIXES = (".mp4", ".gif")
#: frame size (width, height) of recorded episodes
FRAME_SIZE = (320, 240)


class VideoError(ValueError):
    """A video cannot be written as asked (unknown suffix, no frames)."""


def check_video_path(path: str | Path) -> Path:
    """``path`` if its suffix names a format this module writes, else a ``VideoError``."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoError(f"{path}: a video must end in {' or '.join(VIDEO_SUFFIXES)}")
    return path


def rollout_frames(env, policy, seed: int, every: int = 1, size: tuple[int, int] = FRAME_SIZE) -> tuple[list, bool]:
    """(frames, success) of one episode of ``policy`` (obs -> action) in ``env`` (an ``ArmEnv``), a
    frame of the task's camera at the start and after every ``every`` env steps (and the last)."""
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    camera = env.task.camera
    frames = [env.sim.render(*size, camera=camera)]
    done, info, steps = False, {"is_success": False}, 0
    while not done:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        done, steps = terminated or truncated, steps + 1
        if steps % every == 0 or done:
            frames.append(env.sim.render(*size, camera=camera))
    return frames, bool(info["is_success"])


def real_time_fps(env, every: int = 1) -> float:
    """Frames per second that play ``rollout_frames(env, ..., every)`` at the simulation's pace."""
    return 1.0 / (every * env.config.k * env.config.control_period)


def _titled(frame: np.ndarray, title: str) -> np.ndarray:
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, image.width, 16], fill=(0, 0, 0))
    draw.text((4, 2), title, fill=(255, 255, 255))
    return np.asarray(image)


def side_by_side(runs: list[list[np.ndarray]], titles: list[str]) -> list[np.ndarray]:
    """One frame per time step with the runs next to each other, each under its title; a run that
    ended earlier holds its last frame."""
    if not runs or any(len(r) == 0 for r in runs) or len(runs) != len(titles):
        raise VideoError("side_by_side needs one non-empty run of frames per title")
    length = max(len(r) for r in runs)
    return [np.concatenate([_titled(r[min(i, len(r) - 1)], t) for r, t in zip(runs, titles)], axis=1)
            for i in range(length)]


def write_video(path: str | Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write RGB ``frames`` (H, W, 3 uint8, all of one size) to ``path`` (.mp4 or .gif)."""
    path = check_video_path(path)
    if not frames:
        raise VideoError(f"{path}: no frames to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        return path
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, macro_block_size=1,
                                         output_params=["-loglevel", "error"])
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f, dtype=np.uint8).tobytes())
    writer.close()
    return path
