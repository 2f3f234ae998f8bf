"""``ohio eval MODEL --task T --controller CONFIG.yaml --episodes N --seed S [--video OUT.mp4]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from controllers.config import ConfigError, load_config
from ohio_core.cli.output import emit_json, table
from ohio_core.envs.arm.tasks import OBS_LAYOUT, TASKS
from ohio_core.learning.evaluate import evaluate, record
from ohio_core.learning.policy import PolicyMismatchError, load_policy
from ohio_core.video import check_video_path, write_video


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="run a trained policy in the simulator and score it",
                       description="Roll a trained policy out in the simulator (goal policies: a goal every k "
                                   "control periods, the controller at 50 Hz) and report return, success rate "
                                   "and the normalized score (0 = uniform-random high-level actions, 100 = the "
                                   "scripted expert under its own controller), mean and standard error.")
    p.add_argument("model", type=Path, help="model (MODEL.d3 + MODEL.json)")
    p.add_argument("--task", choices=list(TASKS), default=None, help="default: the model's task")
    p.add_argument("--controller", type=Path, default=None,
                   help="deployment controller config (YAML); default: the one recorded in the model")
    p.add_argument("--allow-controller-change", action="store_true",
                   help="deploy under a controller other than the one the model's goals were made for")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--horizon", type=int, default=None, help="control steps per episode (default: the task's)")
    p.add_argument("--video", type=Path, default=None, metavar="OUT",
                   help="also record the first --video-episodes evaluated episodes into OUT (.mp4 or .gif)")
    p.add_argument("--video-episodes", type=int, default=1)
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1 or args.video_episodes < 1:
        raise SystemExit("ohio eval: --episodes and --video-episodes must be >= 1")
    try:
        policy = load_policy(args.model)
        config = load_config(args.controller) if args.controller else None
        if args.task is not None:
            policy.check(args.task, OBS_LAYOUT)
        video = check_video_path(args.video) if args.video is not None else None
        res = evaluate(policy, config, args.episodes, args.seed, args.horizon, args.allow_controller_change,
                       progress=True)
        if video is not None:
            frames, _, fps = record(policy, config, args.video_episodes, args.seed, args.horizon,
                                    args.allow_controller_change)
            write_video(video, frames, fps)
            print(f"wrote {video} ({len(frames)} frames, {args.video_episodes} episode(s))")
    except (FileNotFoundError, ConfigError, PolicyMismatchError, ValueError) as exc:
        raise SystemExit(f"ohio eval: {exc}") from None
    s, ref = res.summary, res.reference
    print(table([["robot", policy.robot], ["task", policy.task], ["level", policy.level],
                 ["controller", args.controller or "the model's"], ["episodes", s["episodes"]],
                 ["return", f"{s['return_mean']:.2f} +- {s['return_se']:.2f}"],
                 ["success rate", s["success_rate"]],
                 ["normalized score", f"{s['mean']:.1f} +- {s['se']:.1f}"],
                 ["reference: random return", ref["random_return"]],
                 ["reference: expert return", ref["expert_return"]]], ["", "value"]))
    if args.json:
        emit_json({"model": str(args.model), "robot": policy.robot, "task": policy.task, "controller": str(args.controller or ""),
                   **s, "reference": ref, "returns": res.returns, "successes": res.successes})
    return 0
