"""What a bag holds, and whether relabeling with a topic map finds what it needs in it (``ohio
bag-info``): ``inspect_bag``."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from ohio_core.data.account import Record, Report, Table, optional
from ohio_core.data.bag_common import BagError
from ohio_core.data.bag_read import match_roles, read_messages
from ohio_core.data.bag_storage import StoredBag, open_bag
from ohio_core.data.rows_episodic import task_state_index
from ohio_core.data import topics as tp
from ohio_core.data.topics import TopicMap


def _role_status(bag: StoredBag, tm: TopicMap, role: str, topic: str, roles_of: dict, problems: dict) -> str:
    if role == "commands" and tm.effort_source != "commands":
        return f"not used (effort_source: {tm.effort_source})"
    if role in problems:
        return problems[role]
    if topic in roles_of:
        return f"{sum(c.msgcount for c in bag.connections if c.topic == topic)} messages"
    return "not in the bag (optional)"


def _first_message_problems(bag: StoredBag, tm: TopicMap, roles_of: dict) -> dict[str, str]:
    """role -> what the first message of its topic shows is wrong (joint names, the command width,
    the task-state layout): what a read would stop at."""
    out = {}
    conns = bag.use({t: " and ".join(r) for t, r in roles_of.items()})
    for topic, roles in roles_of.items():
        try:
            first = next(read_messages(bag.path, bag, [c for c in conns if c.topic == topic]), None)
        except BagError as exc:
            out[roles[0]] = str(exc).removeprefix(f"{bag.path}: ")
            continue
        if first is None:
            continue
        for role in roles:
            problem = _message_problem(tm, role, topic, first[0].msgtype, first[2], bag.path)
            if problem:
                out[role] = problem
        effort = tp.STATE_MESSAGE_FIELDS.get(first[0].msgtype, {}).get("effort", "effort")
        if "joint_states" in roles and tm.effort_source == "joint_states" and not len(getattr(first[2], effort)):
            out["note"] = f"{topic!r} carries no efforts: goals only by state matching"
    return out


def _message_problem(tm: TopicMap, role: str, topic: str, msgtype: str, msg, path) -> str | None:
    """What a role's first message shows is wrong (None: nothing)."""
    if msgtype in tp.STATE_MESSAGE_FIELDS and role in tp.SHARED_ROLES:
        wanted = ("command",) if role == "commands" else ("position", "velocity", "effort")
        for key in wanted:
            name = tp.STATE_MESSAGE_FIELDS[msgtype][key]
            if len(getattr(msg, name, ())) != len(tm.arm_joints):
                return (f"topic {topic!r} ({role}): {msgtype} field {name!r} does not hold {len(tm.arm_joints)} "
                        f"values (one per arm joint)")
        return None
    if role == "joint_states" or (role == "commands" and msgtype == tp.JOINT_STATE_TYPE):
        missing = [j for j in tm.arm_joints if j not in msg.name]
        if missing:
            return (f"topic {topic!r} lacks the arm joint(s) {missing}; its messages name {list(msg.name)} "
                    f"(pass --robot for another arm, or set arm_joints in the topic map)")
    elif role == "commands":
        label = msg.layout.dim[0].label if msg.layout.dim else ""
        names = [x.strip() for x in label.split(",")] if "," in label else None
        if names is not None and sorted(names) != sorted(tm.arm_joints):
            return f"topic {topic!r} names joints {names}, expected {list(tm.arm_joints)}"
        if len(msg.data) != len(tm.arm_joints):
            return (f"topic {topic!r} carries {len(msg.data)} values, expected {len(tm.arm_joints)} "
                    f"(one per arm joint)")
    elif role == "task_state":
        label = msg.layout.dim[0].label if msg.layout.dim else ""
        try:
            task_state_index(path, topic, label, tm)
        except BagError as exc:
            return str(exc).removeprefix(f"{path}: ")
    return None


@dataclass(eq=False)
class BagInfo(Record):
    """What a bag holds and whether relabeling with a topic map finds what it needs in it."""

    bag: str
    info: dict                    # storage, files, metadata version, compression (``bag_storage.StoredBag.info``)
    messages: int
    start: str | None             # ISO 8601, UTC (None: no messages)
    duration_s: float
    topics: dict[str, dict]       # topic -> types, messages, serialization, definition, unreadable (why, or None)
    roles: dict[str, dict]        # role of the topic map -> its topic and status
    effort_source: str
    gravity: dict                 # whether the logged commanded and measured efforts hold g(q) (topic map)
    problems: list[str]           # what would stop a read (empty: relabeling can read the bag)
    ready: bool
    note: str | None = optional()

    FLAT = ("info",)

    def report(self, map_name: str) -> Report:
        """What ``ohio bag-info`` prints for the bag (``map_name``: the topic map's name)."""
        parts = [f"storage {self.info['storage']}", f"{self.info['files']} file(s)"]
        parts += [f"{key.replace('_', ' ')} {self.info[key]}" for key in ("metadata_version", "compression")
                  if key in self.info]
        out: Report = [self.bag, "  " + ", ".join(parts)]
        if self.info.get("metadata_rebuilt"):
            out.append(f"  {self.info['metadata_rebuilt']} (--reindex writes its metadata.yaml)")
        out.append(f"  {self.messages} messages over {self.duration_s:g} s" + (f" from {self.start}" if self.start
                                                                               else ""))
        out.append(Table([[topic, "/".join(t["types"]), t["messages"], "/".join(t["serialization"]),
                           "/".join(t["definition"]), "yes" if t["unreadable"] is None else "no (below)"]
                          for topic, t in self.topics.items()],
                         ["topic", "type", "messages", "serialization", "definition", "readable"], "  "))
        out += [f"  not readable: {topic}: {t['unreadable']}" for topic, t in self.topics.items()
                if t["unreadable"] is not None]
        out.append(f"  relabeling with topic map {map_name} (effort_source: {self.effort_source}):")
        out.append(Table([[role, v["topic"], v["status"] if v["status"] not in self.problems else "PROBLEM (below)"]
                          for role, v in self.roles.items()], ["role", "topic", "status"], "    "))
        holds = {True: "hold g(q)", False: "leave g(q) to the driver (relabeling adds it)"}
        out.append(f"    gravity: commanded efforts {holds[self.gravity['commanded']]}; "
                   f"measured efforts {holds[self.gravity['measured']]}")
        if self.note:
            out.append(f"  note: {self.note}")
        if self.ready:
            out.append("  relabeling finds what it needs")
        out += [f"  NOT READY: {problem}" for problem in self.problems]
        return out


def inspect_bag(path: str | Path, topic_map: TopicMap | None = None) -> BagInfo:
    """What a bag holds and whether relabeling with ``topic_map`` finds what it needs (``ohio
    bag-info``): storage, files, metadata version, compression, messages, start and duration;
    each topic's types, message count, serialization, stored definition and why it cannot be read
    (None when it can); each role's topic and status; ``problems`` (what would stop a read,
    checked on the topics and on the first message of each topic a role needs; empty when
    relabeling can read the bag) and ``ready``."""
    tm = topic_map or TopicMap()
    bag = open_bag(path)
    try:
        roles_of, found, _ = match_roles(bag, tm)
        problems = {role: text for role, _, text in found}
        if not problems:
            problems = _first_message_problems(bag, tm, roles_of)
        note = problems.pop("note", None)
        start = int(bag.start_time) if bag.message_count else None
        return BagInfo(
            bag=str(path), info=dict(bag.info), messages=bag.message_count,
            start=None if start is None else datetime.datetime.fromtimestamp(
                start * 1e-9, datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            duration_s=round((int(bag.end_time) - 1 - start) * 1e-9, 3) if start is not None else 0.0,
            topics=bag.topics(),
            roles={role: {"topic": topic, "status": _role_status(bag, tm, role, topic, roles_of, problems)}
                   for role, topic in tm.roles().items()},
            effort_source=tm.effort_source,
            gravity={"commanded": tm.commanded_effort_includes_gravity,
                     "measured": tm.measured_effort_includes_gravity},
            problems=list(problems.values()), ready=not problems, note=note or None)
    finally:
        bag.close()
