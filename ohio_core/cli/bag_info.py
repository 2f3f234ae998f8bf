"""``ohio bag-info BAGS... [--topics MAP] [--reindex] [--json]``: what bags hold, and whether
relabeling finds what it needs in them.

For each bag: storage, files, metadata version, compression, messages, start and duration; every
topic with its types, message count, serialization format and stored definition (and why it
cannot be read, when it cannot: a topic relabeling does not use is skipped, one it uses stops the
read); then each role of the topic map (``--topics``, as ``ohio relabel``) with its topic and
status, checked on the topics and on the first message of each topic a role needs (joint names,
command width, task-state layout).

``--reindex`` first rebuilds the ``metadata.yaml`` of split-recording folders that lack one
(``ros2 bag reindex``), writes it and reads the bag back through it.

Exit status: 0 when every bag is readable and relabeling finds what it needs, 1 when every bag is
readable but some lack what relabeling needs (the problems are listed), 2 when a bag cannot be
read (or ``--reindex`` cannot write its metadata): one line naming the bag and the problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ohio_core.cli.output import emit_json, print_report
from ohio_core.cli.robot import add_robot_argument, robot_of
from ohio_core.data.bag_common import BagError
from ohio_core.data.bag_inspect import inspect_bag
from ohio_core.data.bag_source import write_metadata
from ohio_core.data.topics import PRESETS, TopicMap, TopicMapError
from ohio_core.pipeline.bag_relabel import expand_bags

PROG = "ohio bag-info"


def add_parser(sub) -> None:
    p = sub.add_parser("bag-info", help="topics, types, counts and duration of bags, and whether relabeling finds "
                                        "what it needs",
                       description="What bags hold (storage, topics, types, counts, duration) and whether relabeling "
                                   "with the topic map finds what it needs in them. Exit status: 0 when every bag is "
                                   "readable and ready to relabel, 1 when some lack what relabeling needs, 2 when a "
                                   "bag cannot be read.")
    p.add_argument("bags", nargs="+", type=Path,
                   help="rosbag2 bags (folders, .mcap or .db3 files), ROS 1 .bag files, or folders to search for bags")
    p.add_argument("--topics", default=None,
                   help=f"topic map: a YAML file or one of {sorted(PRESETS)} (as in config/topics/; default: ohio)")
    add_robot_argument(p)
    p.add_argument("--reindex", action="store_true",
                   help="rebuild and write the metadata.yaml of each named split-recording folder that has none "
                        "(as ros2 bag reindex), then report on it")
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def _topic_map(name: str | None, robot):
    """The map of ``--topics``; without it this stack's, with the arm joints of ``robot``."""
    try:
        if name is None:
            return TopicMap.preset("ohio").for_robot(robot)
        return TopicMap.preset(name) if name in PRESETS else TopicMap.load(name)
    except (TopicMapError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"{PROG}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    topic_map = _topic_map(args.topics, robot_of(args, PROG))
    unreadable: dict[str, str] = {}
    written: list[str] = []

    def fail(where, exc) -> None:
        unreadable[str(where)] = str(exc)
        print(f"{PROG}: {exc}", file=sys.stderr)

    named = []
    for path in args.bags:
        if args.reindex:
            try:
                info = write_metadata(path)
            except BagError as exc:
                fail(path, exc)
                continue
            written.append(str(path / "metadata.yaml"))
            print(f"wrote {path / 'metadata.yaml'}: {len(info['files'])} file(s), {info['message_count']} messages, "
                  f"{len(info['topics_with_message_count'])} topics (read back: the same messages per topic)")
        try:
            named += expand_bags([path])
        except BagError as exc:
            fail(path, exc)
    reports = []
    for bag in named:
        try:
            reports.append(inspect_bag(bag, topic_map))
        except BagError as exc:
            fail(bag, exc)
            continue
        print_report(reports[-1].report(args.topics or "ohio"))
    ready = [r for r in reports if r.ready]
    if len(named) + len(unreadable) > 1:
        print(f"{len(reports)} bag(s) read: {len(ready)} ready to relabel, {len(reports) - len(ready)} not; "
              f"{len(unreadable)} could not be read")
    code = 2 if unreadable else 0 if len(ready) == len(reports) else 1
    if args.json:
        emit_json({"bags": [r.to_dict() for r in reports], "unreadable": unreadable, "metadata_written": written,
                   "topic_map": topic_map.to_dict(), "ready": code == 0, "exit_status": code})
    return code
