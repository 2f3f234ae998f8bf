"""Write the golden rosbag2 bags of ``tests/data/test_golden_bags.py`` and their ``expected.json``.

The bags are the rosbag2 variants users bring to ``ohio_core.data.bags.read_bag``: both storages,
compressed, split, written by older rosbag2 releases, with joints in another order, with a gap,
cut or broken, without torque sensing, one recorded by this stack's own ROS 2 recorder node, and
the clean episodes as drivers log them (g(q) left to the driver, franka_ros2, a franka_ros ROS 1
``.bag``).
They are committed (``tests/golden/bags/<name>/``, a few tens of KB each) so that the reader is
tested against fixed files, not only against what today's writer produces.

Regenerate (from the repository root, in the project's virtual environment)::

    python tests/golden/make_golden.py                    # every bag, then expected.json
    python tests/golden/make_golden.py --only gap         # one bag (repeat --only for more)
    python tests/golden/make_golden.py --skip-ros         # every bag but recorder_mcap
    python tests/golden/make_golden.py --expected-only    # keep the bags, record expected.json anew

Only ``recorder_mcap`` needs ROS 2 (rclpy and the ohio_ros console scripts, as the ROS tests
do); everything else runs the MuJoCo simulator or copies messages with ``rosbags``. The bags
derived from ``clean_mcap``/``clean_sqlite3`` are copied from the committed clean bags, so
``--only NAME`` rebuilds NAME from the clean bags on disk (rebuild those first when they change).

Deterministic: the episodes come from ``iter_episodes`` with fixed settings (``SETTINGS``: reach
task, expert policy, 2 episodes of 20 control periods, seed 3) and the bags' times start at the
fixed ``BASE_TIME_NS`` (2023-11-14); rerunning gives the same messages (``recorder_mcap`` aside:
it records a live closed loop, whose timing varies from run to run).

``expected.json`` holds, per bag, the topic map it is read with when not this stack's (``topics``:
a preset or the keys that differ), and what ``read_bag`` must give: either ``account`` (the read's
account less the bag's path: rows, episodes, messages per topic, topics and types in the bag,
dropped rows by reason, unused messages, pieces closed by timeout) and, for the bags that hold
the clean episodes, ``same_rows_as: clean_mcap`` (the rows must be equal, array for array); or
``error``, a substring of the ``BagError`` message (each bag's is set below, with its builder);
or, for ``recorder_mcap``, only ``structural`` facts (topics, episodes, that rows are read). The
accounts are recorded from the reader as it is when the bags are generated: review their diff.
When the reader changes what a bag gives (e.g. ``empty_effort`` once it reads without
commands), change the builder's ``error``/expectation and rerun with ``--only NAME``.

The data files are written by ``rosbags`` (its name is in the MCAP headers), the databases of
the older releases with ``sqlite3``; ``metadata.yaml`` is laid out as rosbag2 (yaml-cpp) writes
it for the release named. A topic's QoS in ``metadata.yaml`` and in the data file agree: rosbags
matches the two, and silently yields no messages for a topic where they differ.

The bags
--------
clean_mcap
    ``collect_bag``: BagWriter, MCAP with zstd chunks, metadata version 9 (Jazzy).
clean_sqlite3
    ``collect_bag`` with storage sqlite3, uncompressed: the same episodes.
sqlite3_zstd_file
    The clean messages in sqlite3 with FILE compression (``ros2 bag record --compression-mode
    file --compression-format zstd``): the whole database zstd-compressed into ``*_0.db3.zstd``;
    ``compression_mode: FILE`` as rosbag2 spells it.
sqlite3_zstd_message
    The same with MESSAGE compression: every message's bytes zstd-compressed in the database.
split_mcap
    One bag in two MCAP files, as ``ros2 bag record --max-bag-duration`` leaves it: episode 0
    in ``split_mcap_0.mcap``, episode 1 in ``split_mcap_1.mcap``, each file with all topics;
    one ``metadata.yaml`` (version 9, Jazzy's layout and QoS lists) lists both in
    ``relative_file_paths`` and in ``files`` (each with its own starting_time, duration and
    message_count), and sums the topics' counts. Each file stores the bag's metadata (with its
    ``custom_data``), as rosbag2 writes it into every file it closes: without metadata.yaml the
    bag is rebuilt from the files (``tests/data/test_bag_info.py``).
sqlite3_v4_foxy
    As Foxy's rosbag2 writes: metadata version 4 (no ``files``, ``custom_data``, ``ros_distro``
    or ``type_description_hash``; QoS profiles as a YAML string, infinite durations as
    2147483647 s 4294967295 ns), and the database without the ``schema``/``metadata``/
    ``message_definitions`` tables (``topics`` has ``offered_qos_profiles``, no hash).
mcap_v5_humble
    As Humble's rosbag2 writes with the MCAP plugin: metadata version 5 (adds ``files``; QoS
    string with infinite durations as 9223372036 s 854775807 ns).
sqlite3_v6
    Metadata version 6 (adds ``custom_data``), as rosbag2 wrote between Humble and Iron, with
    the database of that time (schema version 3: ``schema`` and ``metadata`` tables; no type
    hashes, no message definitions).
mcap_v8_iron
    As Iron's rosbag2 writes: metadata version 8 (adds ``type_description_hash`` (v7) and
    ``ros_distro``); QoS still a string with integer enums (version 9 made it a YAML list with
    names, as in the clean bags).
shuffled_joints
    ``/joint_states`` names its 9 joints in a permuted order with the finger joints
    interleaved, and the effort commands name the arm joints in their layout label in another
    permuted order (the values permuted with the names): reads to the clean rows.
gap
    The clean MCAP with every message stamped in [0.05 s, 0.35 s) of episode 0 left out (a
    0.3 s outage of the whole recording in the middle of a 0.4 s episode).
truncated_mcap
    The clean MCAP cut to 60 % of its bytes (a recording that was killed).
sqlite3_missing_table
    The clean sqlite3 bag whose ``messages`` table was dropped.
empty_effort
    What a driver without torque sensing records: ``/joint_states`` with the 7 arm joints'
    position and velocity and an empty ``effort`` array, at the clean joint-state stamps
    (50 Hz), plus ``/ohio/task_state`` copied from the clean bag, and no effort-command topic.
    With this stack's topic map the commands are required (expected: the missing-topic error);
    with ``effort_source: joint_states`` it reads with no torques and relabels by state matching
    (``tests/data/test_golden_bags.py``).
service_event_mcap
    The clean messages plus a service-event topic, as ``ros2 bag record`` (Jazzy) records service
    introspection: ``/add_two_ints/_service_event`` of type ``example_interfaces/srv/AddTwoInts_Event``
    (its real type hash), whose MCAP schema (encoding ``ros2msg``) holds what rosbag2 stores for a
    service event: a ``SRV:`` delimiter and the ``.srv`` text with its ``---`` (which ``rosbags``
    cannot parse); two calls, four events each. Reads to the clean rows, the topic listed as not
    read.
non_cdr_topic
    The clean messages plus ``/gripper/command_json`` (``std_msgs/msg/Float64``) serialized as
    ``json``, not CDR (``rosbags`` refuses a folder whose metadata.yaml lists such a topic). Reads
    to the clean rows, the topic listed as not read; a topic map that uses it gets the format and
    topic named (``tests/data/test_golden_bags.py``).
gravity_in_commands
    The clean episodes (their rows) as a ros2_control driver logs them, without a task state:
    ``/joint_states`` (the 7 arm joints; position, velocity, and the torque with g(q) of the
    period that ended as measured effort) and ``/forward_effort_controller/commands`` (the
    commanded torques, with g(q)) at each control period's start; episodes 1 s apart. Read with
    the ``ros2_control`` topic map.
gravity_by_driver
    The same with g(q) (the Pinocchio model's, at each period's state) taken out of the commands,
    as a driver that adds it logs them (libfranka); read with ``commanded_effort_includes_gravity:
    false``, it relabels to the goals of ``gravity_in_commands`` (``tests/data/test_golden_bags.py``).
franka_ros2
    The clean episodes as franka_ros2 logs them (``config/topics/franka_ros2.yaml``):
    ``/franka_robot_state_broadcaster/measured_joint_states`` (``panda_joint1..7``: q, dq, and
    tau_J, with g(q)) and ``/franka_robot_state_broadcaster/desired_joint_states`` (effort
    tau_J_d, the commanded torque without g(q), which libfranka adds), both JointState, at each
    control period's start.
franka_ros1
    The clean episodes as franka_ros logs them (``config/topics/franka_ros1.yaml``): the ROS 1 bag
    ``franka_ros1.bag`` (format 2.0, written by ``rosbags.rosbag1``) of
    ``/franka_state_controller/franka_states``, ``franka_msgs/FrankaState`` with a shortened
    definition that the bag carries (header, q, q_d, dq, dq_d, tau_J, tau_J_d, dtau_J,
    robot_mode): q, dq and tau_J (measured, with g(q)) the state, tau_J_d (without g(q)) the
    command, one message per control period's start.
franka_ros1_truncated
    ``franka_ros1.bag`` cut to 60 % of its bytes (its index lost).
recorder_mcap
    Recorded by ``recorder_node`` in a short closed loop over DDS (mujoco_sim_node,
    controller_node, policy_node, recorder_node as ``launch/sim_arm.launch.py`` starts them,
    on simulated time, DDS on the loopback only; joint states at 100 Hz, episodes of 20
    periods), stopped once episode 1 ended (the first message of episode 2 may be in it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import yaml
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, Reader, StoragePlugin, Writer
from rosbags.rosbag2.metadata import dump_qos_v9
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
BAGS = GOLDEN / "bags"
EXPECTED = GOLDEN / "expected.json"
sys.path.insert(0, str(REPO))       # this checkout's ohio_core, whichever the environment installed

TASK, POLICY = "reach", "expert"
SETTINGS = dict(episodes=2, seed=3, horizon=20, k=5)
CLEAN = "clean_mcap"
GAP_S = (0.05, 0.35)        # the window of episode 0 (s after its start) left out of ``gap``
TRUNCATE_TO = 0.6           # fraction of the MCAP file kept in ``truncated_mcap``
# joint orders of ``shuffled_joints``
JS_ORDER = ("panda_joint3", "panda_finger_joint2", "panda_joint6", "panda_joint1", "panda_finger_joint1",
            "panda_joint7", "panda_joint4", "panda_joint2", "panda_joint5")
CMD_ORDER = ("panda_joint5", "panda_joint2", "panda_joint7", "panda_joint1", "panda_joint4", "panda_joint6",
             "panda_joint3")
RECORDER_HORIZON = 20       # control periods per episode in the recorded closed loop
RECORDER_RATE = "100.0"     # Hz of /joint_states and /clock there (the launch default, 500, would make
                            # a bag of 100+ KB: the simulator publishes while the loop starts up)


def _typestore():
    from ohio_core.data.bags import typestore
    return typestore()


# --------------------------------------------------------------------------------------------
# rosbag2 metadata as the older releases write it
# --------------------------------------------------------------------------------------------


def _qos(infinite: tuple[int, int]) -> Qos:
    """The offered QoS ``ros2 bag record`` stores for a plain reliable, volatile publisher
    (history/depth are not known from the graph: UNKNOWN (3), depth 0)."""
    inf = QosTime(*infinite)
    return Qos(QosHistory.UNKNOWN, 0, QosReliability.RELIABLE, QosDurability.VOLATILE, inf, inf,
               QosLiveliness.AUTOMATIC, inf, False)


FOXY_INFINITE = (2147483647, 4294967295)      # rmw's infinite duration as Foxy serialized it
LATER_INFINITE = (9223372036, 854775807)      # and as Galactic and later serialize it


def qos_string(qos: Qos) -> str:
    """A QoS profile list as metadata versions 4-8 store it: a YAML string, enums as integers."""
    def t(x):
        return f"\n    sec: {x.sec}\n    nsec: {x.nsec}"
    return (f"- history: {qos.history.value}\n  depth: {qos.depth}\n  reliability: {qos.reliability.value}\n"
            f"  durability: {qos.durability.value}\n  deadline:{t(qos.deadline)}\n  lifespan:{t(qos.lifespan)}\n"
            f"  liveliness: {qos.liveliness.value}\n  liveliness_lease_duration:{t(qos.liveliness_lease_duration)}\n"
            f"  avoid_ros_namespace_conventions: {str(qos.avoid_ros_namespace_conventions).lower()}")


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    plain = s and all(c.isalnum() or c in "_/.-" for c in s) and not s[0].isdigit() and \
        s.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "~")
    return s if plain else json.dumps(s)      # a JSON string is a YAML double-quoted scalar


def emit_yaml(node, indent: int = 0) -> str:
    """Block YAML laid out as yaml-cpp (rosbag2) writes it: sequences indented under their key,
    strings plain where possible, else double-quoted (``""`` for empty)."""
    pad = " " * indent
    lines = []
    for key, v in node.items():
        if isinstance(v, dict) and v:
            lines.append(f"{pad}{key}:")
            lines.append(emit_yaml(v, indent + 2))
        elif isinstance(v, list) and v:
            lines.append(f"{pad}{key}:")
            for item in v:
                if isinstance(item, dict):
                    first, *rest = emit_yaml(item, indent + 4).split("\n")
                    lines.append(f"{pad}  - {first.lstrip()}")
                    lines.extend(rest)
                else:
                    lines.append(f"{pad}  - {_scalar(item)}")
        elif isinstance(v, (dict, list)):
            lines.append(f"{pad}{key}: {'{}' if isinstance(v, dict) else '[]'}")
        elif v is None:
            lines.append(f"{pad}{key}: ~")
        else:
            lines.append(f"{pad}{key}: {_scalar(v)}")
    return "\n".join(lines)


def rosbag2_metadata(version: int, storage: str, files: list[dict], topics: list[dict], qos: Qos,
                     custom_data: dict | None = None, ros_distro: str | None = None) -> str:
    """metadata.yaml as rosbag2 writes metadata ``version`` (4..9), keys in that release's order.

    ``files``: per data file {path, start, duration, count}; ``topics``: {name, type, count,
    hash}; ``qos``: every topic's offered QoS. Version 4 has no ``files``, 6 adds
    ``custom_data``, 7 ``type_description_hash``, 8 ``ros_distro`` (rosbag2_storage/yaml.hpp), 9
    writes the QoS profiles as a YAML list with the enums by name instead of a string. Foxy (4)
    wrote ``relative_file_paths`` right after the storage id, later releases near the end."""
    start = min(f["start"] for f in files)
    end = max(f["start"] + f["duration"] for f in files)
    topic_list = []
    for t in topics:
        meta = {"name": t["name"], "type": t["type"], "serialization_format": "cdr",
                "offered_qos_profiles": dump_qos_v9([qos]) if version >= 9 else qos_string(qos)}
        if version >= 7:
            meta["type_description_hash"] = t["hash"]
        topic_list.append({"topic_metadata": meta, "message_count": t["count"]})
    paths = [f["path"] for f in files]
    info: dict = {"version": version, "storage_identifier": storage}
    if version <= 4:
        info["relative_file_paths"] = paths
    info.update({"duration": {"nanoseconds": end - start}, "starting_time": {"nanoseconds_since_epoch": start},
                 "message_count": sum(f["count"] for f in files), "topics_with_message_count": topic_list,
                 "compression_format": "", "compression_mode": ""})
    if version >= 5:
        info["relative_file_paths"] = paths
        info["files"] = [{"path": f["path"], "starting_time": {"nanoseconds_since_epoch": f["start"]},
                          "duration": {"nanoseconds": f["duration"]}, "message_count": f["count"]} for f in files]
    if version >= 6:
        info["custom_data"] = dict(custom_data or {})
    if version >= 8:
        info["ros_distro"] = ros_distro
    return emit_yaml({"rosbag2_bagfile_information": info}) + "\n"


# --------------------------------------------------------------------------------------------
# Copying messages
# --------------------------------------------------------------------------------------------


def bag_info(path: Path) -> dict:
    return yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


def read_raw(src: Path):
    """(connections [(topic, msgtype)], messages [(connection index, timestamp, bytes)])."""
    with Reader(src) as r:
        conns = [(c.topic, c.msgtype) for c in r.connections]
        index = {c.id: i for i, c in enumerate(r.connections)}
        msgs = [(index[c.id], t, bytes(raw)) for c, t, raw in r.messages()]
    return conns, msgs


def write_raw(dst: Path, conns, msgs, *, storage=StoragePlugin.MCAP, version: int = 9, compression=None,
              qos: Qos | None = None, custom_data: dict | None = None, definitions: dict | None = None,
              formats: dict | None = None) -> None:
    """A bag at ``dst`` (a new folder; its data file is named after it) with these messages.

    MCAP gets zstd chunks (as ``ros2 bag record`` writes MCAP by default, and BagWriter)
    unless ``compression`` says otherwise. ``definitions``: msgtype -> (stored definition text,
    type hash) for types the Jazzy store lacks; ``formats``: topic -> serialization format (CDR
    where not given)."""
    ts = _typestore()
    w = Writer(dst, version=version, storage_plugin=storage)
    if compression is None and storage == StoragePlugin.MCAP:
        compression = CompressionMode.STORAGE
    if compression is not None:
        w.set_compression(compression, CompressionFormat.ZSTD)
    w.open()
    out = []
    for topic, msgtype in conns:
        msgdef, rihs01 = (definitions or {}).get(msgtype, (None, None))
        out.append(w.add_connection(topic, msgtype, typestore=None if msgdef else ts, msgdef=msgdef, rihs01=rihs01,
                                    serialization_format=(formats or {}).get(topic, "cdr"),
                                    offered_qos_profiles=[qos] if qos else []))
    for i, t, raw in msgs:
        w.write(out[i], t, raw)
    for k, v in (custom_data or {}).items():
        w.set_custom_data(k, str(v))
    w.close()


def _move_bag(tmp_bag: Path, out: Path) -> None:
    """Move a bag folder written under a temporary name to ``out`` (its file names stay)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.move(str(tmp_bag), str(out))


def _file_entry(path: str, msgs) -> dict:
    times = [t for _, t, _ in msgs]
    return {"path": path, "start": min(times), "duration": max(times) - min(times), "count": len(msgs)}


def _topic_entries(conns, msgs, hashes: dict | None = None) -> list[dict]:
    counts = np.bincount([i for i, _, _ in msgs], minlength=len(conns))
    return [{"name": topic, "type": msgtype, "count": int(counts[i]), "hash": (hashes or {}).get(msgtype, "")}
            for i, (topic, msgtype) in enumerate(conns)]


# --------------------------------------------------------------------------------------------
# The bags
# --------------------------------------------------------------------------------------------

BUILDERS: dict = {}


def bag(name: str, description: str, same_rows_as: str | None = None, error: str | None = None,
        needs_ros: bool = False, topics: str | dict | None = None, file: str | None = None):
    """Register a builder ``fn(out: Path, work: Path)`` writing the bag folder ``out``; ``topics``:
    the topic map it is read with (a preset name or the keys that differ from this stack's; None:
    this stack's); ``file``: the bag is this file in the folder (a ROS 1 ``.bag``), not the folder."""
    def register(fn):
        BUILDERS[name] = dict(fn=fn, description=description, same_rows_as=same_rows_as, error=error,
                              needs_ros=needs_ros, topics=topics, file=file)
        return fn
    return register


def topic_map(topics: str | dict | None):
    """The topic map a golden bag is read with (``bag``'s ``topics``)."""
    from ohio_core.data.topics import TopicMap
    return TopicMap.preset(topics) if isinstance(topics, str) else TopicMap.from_dict(topics)


def _collect(out: Path, storage: str) -> None:
    from ohio_core.data.collect import collect_bag
    if out.exists():
        shutil.rmtree(out)
    collect_bag(out, TASK, POLICY, storage=storage, progress=False, **SETTINGS)


@bag("clean_mcap", "collect_bag: BagWriter, MCAP with zstd chunks, metadata version 9")
def clean_mcap(out: Path, work: Path) -> None:
    _collect(out, "mcap")


@bag("clean_sqlite3", "collect_bag with storage sqlite3, uncompressed: the episodes of clean_mcap",
     same_rows_as=CLEAN)
def clean_sqlite3(out: Path, work: Path) -> None:
    _collect(out, "sqlite3")


def _set_compression_mode(bag: Path, mode: str) -> None:
    """rosbag2 writes the compression mode upper case (FILE, MESSAGE); rosbags lower case."""
    meta = bag / "metadata.yaml"
    text = meta.read_text()
    old = f"compression_mode: {mode.lower()}"
    assert text.count(old) == 1, text
    meta.write_text(text.replace(old, f"compression_mode: {mode}"))


@bag("sqlite3_zstd_file", "sqlite3 with FILE compression (zstd): the database compressed whole into "
     "*_0.db3.zstd", same_rows_as=CLEAN)
def sqlite3_zstd_file(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / "clean_sqlite3")
    tmp = work / f"{out.name}_0"
    write_raw(tmp, conns, msgs, storage=StoragePlugin.SQLITE3, compression=CompressionMode.FILE,
              custom_data=bag_info(BAGS / "clean_sqlite3").get("custom_data"))
    _set_compression_mode(tmp, "FILE")
    _move_bag(tmp, out)


@bag("sqlite3_zstd_message", "sqlite3 with MESSAGE compression (zstd): every message compressed",
     same_rows_as=CLEAN)
def sqlite3_zstd_message(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / "clean_sqlite3")
    tmp = work / f"{out.name}_0"
    write_raw(tmp, conns, msgs, storage=StoragePlugin.SQLITE3, compression=CompressionMode.MESSAGE,
              custom_data=bag_info(BAGS / "clean_sqlite3").get("custom_data"))
    _set_compression_mode(tmp, "MESSAGE")
    _move_bag(tmp, out)


def _episode_starts(msgs, conns) -> list[int]:
    """Timestamps of each episode's first task-state message (step 0), in order."""
    from ohio_core.data import topics as tp
    ts = _typestore()
    k = conns.index((tp.TASK_STATE, tp.FLOAT64_MULTI_ARRAY))
    starts = []
    for i, t, raw in msgs:
        if i == k and ts.deserialize_cdr(raw, tp.FLOAT64_MULTI_ARRAY).data[tp.TS["step"]] == 0:
            starts.append(t)
    return starts


@bag("split_mcap", "one bag in two MCAP files (ros2 bag record --max-bag-duration): episode 0 in "
     "split_mcap_0.mcap, episode 1 in split_mcap_1.mcap", same_rows_as=CLEAN)
def split_mcap(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / CLEAN)
    cut = _episode_starts(msgs, conns)[1]
    parts = [[m for m in msgs if m[1] < cut], [m for m in msgs if m[1] >= cut]]
    qos = _qos(LATER_INFINITE)
    tmp = work / out.name
    tmp.mkdir()
    files, hashes = [], {}
    for n, part in enumerate(parts):
        # each file is a bag of its own while it is written (every topic in each file)
        piece = work / f"{out.name}_{n}"
        write_raw(piece, conns, part, qos=qos, custom_data=bag_info(BAGS / CLEAN).get("custom_data"))
        (data,) = piece.glob("*.mcap")
        shutil.move(str(data), str(tmp / data.name))
        files.append(_file_entry(data.name, part))
        hashes.update({t["topic_metadata"]["type"]: t["topic_metadata"]["type_description_hash"]
                       for t in bag_info(piece)["topics_with_message_count"]})
    # one metadata.yaml for both files, as rosbag2 writes it when the recording ends
    (tmp / "metadata.yaml").write_text(rosbag2_metadata(
        9, "mcap", files, _topic_entries(conns, msgs, hashes), qos,
        custom_data=bag_info(BAGS / CLEAN).get("custom_data"), ros_distro="jazzy"))
    _move_bag(tmp, out)


def _legacy_db3(path: Path, conns, msgs, qos: str, schema: int, metadata_text: str | None = None,
                version: int | None = None, ros_distro: str = "") -> None:
    """A .db3 as older rosbag2 releases create it. ``schema`` 2: Foxy..Humble (no schema table;
    ``topics`` with ``offered_qos_profiles``); 3: adds the ``schema`` and ``metadata`` tables."""
    con = sqlite3.connect(path)
    if schema >= 3:
        con.execute("CREATE TABLE schema(schema_version INTEGER PRIMARY KEY,ros_distro TEXT NOT NULL);")
        con.execute("CREATE TABLE metadata(id INTEGER PRIMARY KEY,metadata_version INTEGER NOT NULL,"
                    "metadata TEXT NOT NULL);")
    con.execute("CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,"
                "serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL);")
    con.execute("CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,"
                "timestamp INTEGER NOT NULL, data BLOB NOT NULL);")
    con.execute("CREATE INDEX timestamp_idx ON messages (timestamp ASC);")
    if schema >= 3:
        con.execute("INSERT INTO schema (schema_version, ros_distro) VALUES (?, ?)", (schema, ros_distro))
    con.executemany("INSERT INTO topics (id, name, type, serialization_format, offered_qos_profiles) "
                    "VALUES (?, ?, ?, 'cdr', ?)", [(i + 1, t, m, qos) for i, (t, m) in enumerate(conns)])
    con.executemany("INSERT INTO messages (timestamp, topic_id, data) VALUES (?, ?, ?)",
                    [(t, i + 1, raw) for i, t, raw in msgs])
    if schema >= 3 and metadata_text is not None:
        con.execute("INSERT INTO metadata (metadata_version, metadata) VALUES (?, ?)", (version, metadata_text))
    con.commit()
    con.close()


@bag("sqlite3_v4_foxy", "as Foxy writes: metadata version 4, QoS as a string, a database without "
     "schema/metadata tables", same_rows_as=CLEAN)
def sqlite3_v4_foxy(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / "clean_sqlite3")
    tmp = work / out.name
    tmp.mkdir()
    db = f"{out.name}_0.db3"
    qos = _qos(FOXY_INFINITE)
    _legacy_db3(tmp / db, conns, msgs, qos_string(qos), schema=2)
    (tmp / "metadata.yaml").write_text(rosbag2_metadata(4, "sqlite3", [_file_entry(db, msgs)],
                                                       _topic_entries(conns, msgs), qos))
    _move_bag(tmp, out)


@bag("sqlite3_v6", "metadata version 6 (custom_data) with the database of that time (schema 3)",
     same_rows_as=CLEAN)
def sqlite3_v6(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / "clean_sqlite3")
    tmp = work / out.name
    tmp.mkdir()
    db = f"{out.name}_0.db3"
    qos = _qos(LATER_INFINITE)
    text = rosbag2_metadata(6, "sqlite3", [_file_entry(db, msgs)], _topic_entries(conns, msgs), qos,
                           custom_data=bag_info(BAGS / "clean_sqlite3").get("custom_data"))
    inner = textwrap.dedent(text.split("\n", 1)[1])    # the db3 stores it without the top-level key
    _legacy_db3(tmp / db, conns, msgs, qos_string(qos), schema=3, metadata_text=inner, version=6, ros_distro="rolling")
    (tmp / "metadata.yaml").write_text(text)
    _move_bag(tmp, out)


def _legacy_mcap(out: Path, work: Path, version: int, ros_distro: str | None, custom: bool) -> None:
    conns, msgs = read_raw(BAGS / CLEAN)
    qos = _qos(LATER_INFINITE)
    tmp = work / f"{out.name}_0"
    # rosbags writes the channels' QoS as metadata version 8 does (a string, integer enums)
    write_raw(tmp, conns, msgs, version=8, qos=qos)
    (data,) = [p.name for p in tmp.iterdir() if p.suffix == ".mcap"]
    hashes = {t["topic_metadata"]["type"]: t["topic_metadata"]["type_description_hash"]
              for t in bag_info(tmp)["topics_with_message_count"]}
    (tmp / "metadata.yaml").write_text(rosbag2_metadata(
        version, "mcap", [_file_entry(data, msgs)], _topic_entries(conns, msgs, hashes), qos,
        custom_data=bag_info(BAGS / CLEAN).get("custom_data") if custom else None, ros_distro=ros_distro))
    _move_bag(tmp, out)


@bag("mcap_v5_humble", "as Humble writes with the MCAP plugin: metadata version 5 (files, QoS string)",
     same_rows_as=CLEAN)
def mcap_v5_humble(out: Path, work: Path) -> None:
    _legacy_mcap(out, work, 5, None, custom=False)


@bag("mcap_v8_iron", "as Iron writes: metadata version 8 (type_description_hash, ros_distro; QoS string)",
     same_rows_as=CLEAN)
def mcap_v8_iron(out: Path, work: Path) -> None:
    _legacy_mcap(out, work, 8, "iron", custom=True)


@bag("shuffled_joints", "joint states in a permuted order with the fingers interleaved; commands naming "
     "the arm joints in another order in their layout label", same_rows_as=CLEAN)
def shuffled_joints(out: Path, work: Path) -> None:
    from ohio_core.data import topics as tp
    ts = _typestore()
    conns, msgs = read_raw(BAGS / CLEAN)
    shuffled = []
    for i, t, raw in msgs:
        topic, msgtype = conns[i]
        if topic == tp.JOINT_STATES:
            m = ts.deserialize_cdr(raw, msgtype)
            idx = [list(m.name).index(j) for j in JS_ORDER]
            m.name = list(JS_ORDER)
            m.position, m.velocity, m.effort = m.position[idx], m.velocity[idx], m.effort[idx]
            raw = bytes(ts.serialize_cdr(m, msgtype))
        elif topic == tp.EFFORT_COMMANDS:
            m = ts.deserialize_cdr(raw, msgtype)
            names = [s.strip() for s in m.layout.dim[0].label.split(",")]
            m.data = m.data[[names.index(j) for j in CMD_ORDER]]
            m.layout.dim[0].label = ",".join(CMD_ORDER)
            raw = bytes(ts.serialize_cdr(m, msgtype))
        shuffled.append((i, t, raw))
    tmp = work / out.name
    write_raw(tmp, conns, shuffled, custom_data=bag_info(BAGS / CLEAN).get("custom_data"))
    _move_bag(tmp, out)


@bag("gap", f"clean_mcap without the messages stamped in [{GAP_S[0]}, {GAP_S[1]}) s of episode 0")
def gap(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / CLEAN)
    t0 = _episode_starts(msgs, conns)[0]
    lo, hi = t0 + round(GAP_S[0] * 1e9), t0 + round(GAP_S[1] * 1e9)
    kept = [m for m in msgs if not lo <= m[1] < hi]
    assert len(kept) < len(msgs)
    tmp = work / out.name
    write_raw(tmp, conns, kept, custom_data=bag_info(BAGS / CLEAN).get("custom_data"))
    _move_bag(tmp, out)


@bag("truncated_mcap", f"clean_mcap with its MCAP file cut to {TRUNCATE_TO:.0%} of its bytes",
     error="cannot open the bag (truncated or corrupt?)")
def truncated_mcap(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / CLEAN)
    tmp = work / out.name
    write_raw(tmp, conns, msgs, custom_data=bag_info(BAGS / CLEAN).get("custom_data"))
    (data,) = tmp.glob("*.mcap")
    raw = data.read_bytes()
    data.write_bytes(raw[: int(len(raw) * TRUNCATE_TO)])
    _move_bag(tmp, out)


@bag("sqlite3_missing_table", "clean_sqlite3 whose messages table was dropped",
     error="database missing tables")
def sqlite3_missing_table(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / "clean_sqlite3")
    tmp = work / out.name
    write_raw(tmp, conns, msgs, storage=StoragePlugin.SQLITE3,
              custom_data=bag_info(BAGS / "clean_sqlite3").get("custom_data"))
    (db,) = tmp.glob("*.db3")
    con = sqlite3.connect(db)
    con.execute("DROP TABLE messages")
    con.commit()
    con.execute("VACUUM")
    con.close()
    _move_bag(tmp, out)


@bag("empty_effort", "joint states (7 arm joints, position and velocity, empty effort) at 50 Hz and the "
     "task state; no effort commands (a driver without torque sensing)",
     error="'/effort_controller/commands' (commands) is not in the bag")
def empty_effort(out: Path, work: Path) -> None:
    from ohio_core.data import topics as tp
    ts = _typestore()
    JointState = ts.types[tp.JOINT_STATE_TYPE]
    conns, msgs = read_raw(BAGS / CLEAN)
    keep = [(tp.JOINT_STATES, tp.JOINT_STATE_TYPE), (tp.TASK_STATE, tp.FLOAT64_MULTI_ARRAY)]
    new_index = {conns.index(c): n for n, c in enumerate(keep)}
    out_msgs = []
    for i, t, raw in msgs:
        if i not in new_index:
            continue
        if conns[i][0] == tp.JOINT_STATES:
            m = ts.deserialize_cdr(raw, tp.JOINT_STATE_TYPE)
            idx = [list(m.name).index(j) for j in tp.ARM_JOINTS]
            m = JointState(header=m.header, name=list(tp.ARM_JOINTS), position=m.position[idx],
                           velocity=m.velocity[idx], effort=np.zeros(0))
            raw = bytes(ts.serialize_cdr(m, tp.JOINT_STATE_TYPE))
        out_msgs.append((new_index[i], t, raw))
    tmp = work / out.name
    write_raw(tmp, keep, out_msgs)
    _move_bag(tmp, out)


#: a service event type and what rosbag2 (Jazzy) stores for it: the .srv text after a SRV: delimiter
SERVICE_TOPIC = "/add_two_ints/_service_event"
SERVICE_EVENT = "example_interfaces/srv/AddTwoInts_Event"
SERVICE_SRV = "int64 a\nint64 b\n---\nint64 sum\n"
SERVICE_DEFINITION = "=" * 80 + "\nSRV: example_interfaces/srv/AddTwoInts\n" + SERVICE_SRV
# the type hash rosidl generates (rosbags computes another: it hashes ServiceEventInfo's char[16] as uint8)
SERVICE_HASH = "RIHS01_32c1d140259c71e5c355115942bcb31df98b4330e4d906b1b75ccb1c9b3ce6c8"
JSON_TOPIC = "/gripper/command_json"


def _service_event_types():
    """A typestore holding ``example_interfaces/srv/AddTwoInts_Event`` (and its request and response)
    under their ROS 2 names (``rosbags`` files a definition named .../srv/X under .../srv/msg/X)."""
    def rename(node):
        if isinstance(node, str):
            return node.replace("example_interfaces/srv/msg/", "example_interfaces/srv/")
        if isinstance(node, (tuple, list)):
            return type(node)(rename(x) for x in node)
        return node

    typs = {}
    for name, text in (("AddTwoInts_Request", "int64 a\nint64 b\n"), ("AddTwoInts_Response", "int64 sum\n"),
                       ("AddTwoInts_Event", "service_msgs/msg/ServiceEventInfo info\n"
                                            "example_interfaces/srv/AddTwoInts_Request[<=1] request\n"
                                            "example_interfaces/srv/AddTwoInts_Response[<=1] response\n")):
        typs.update(get_types_from_msg(text, f"example_interfaces/srv/{name}"))
    ts = get_typestore(Stores.ROS2_JAZZY)
    ts.register({rename(k): rename(v) for k, v in typs.items()})
    return ts


@bag("service_event_mcap", "clean_mcap plus a service-event topic (example_interfaces/srv/AddTwoInts_Event) "
     "whose MCAP schema holds the .srv text rosbag2 stores for it", same_rows_as=CLEAN)
def service_event_mcap(out: Path, work: Path) -> None:
    ts = _service_event_types()
    conns, msgs = read_raw(BAGS / CLEAN)
    k = len(conns)
    conns = conns + [(SERVICE_TOPIC, SERVICE_EVENT)]
    Event, Info = ts.types[SERVICE_EVENT], ts.types["service_msgs/msg/ServiceEventInfo"]
    Request, Response = ts.types["example_interfaces/srv/AddTwoInts_Request"], \
        ts.types["example_interfaces/srv/AddTwoInts_Response"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    gid = np.arange(16, dtype=np.uint8)
    events = []
    for call, t in enumerate((msgs[10][1] + 1_000_000, msgs[-10][1] + 1_000_000)):
        a, b = call + 2, 3 * call + 5
        for kind in range(4):           # request sent, request received, response sent, response received
            ns = t + kind * 100_000
            request = [Request(a=a, b=b)] if kind < 2 else []
            response = [Response(sum=a + b)] if kind >= 2 else []
            m = Event(info=Info(event_type=kind, stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), client_gid=gid,
                                sequence_number=call + 1), request=request, response=response)
            events.append((k, ns, bytes(ts.serialize_cdr(m, SERVICE_EVENT))))
    tmp = work / out.name
    write_raw(tmp, conns, sorted(msgs + events, key=lambda m: m[1]),
              custom_data=bag_info(BAGS / CLEAN).get("custom_data"),
              definitions={SERVICE_EVENT: (SERVICE_DEFINITION, SERVICE_HASH)})
    _move_bag(tmp, out)


@bag("non_cdr_topic", f"clean_mcap plus {JSON_TOPIC} (std_msgs/msg/Float64) serialized as json, not CDR",
     same_rows_as=CLEAN)
def non_cdr_topic(out: Path, work: Path) -> None:
    conns, msgs = read_raw(BAGS / CLEAN)
    k = len(conns)
    conns = conns + [(JSON_TOPIC, "std_msgs/msg/Float64")]
    extra = [(k, t + 500_000, json.dumps({"data": round(0.1 * n, 1)}).encode()) for n, (_, t, _) in
             enumerate(msgs[::20])]
    tmp = work / out.name
    write_raw(tmp, conns, sorted(msgs + extra, key=lambda m: m[1]),
              custom_data=bag_info(BAGS / CLEAN).get("custom_data"), formats={JSON_TOPIC: "json"})
    _move_bag(tmp, out)


@bag("recorder_mcap", "recorded by recorder_node in a short closed loop over DDS (sim, controller, "
     "policy, recorder on simulated time)", needs_ros=True)
def recorder_mcap(out: Path, work: Path) -> None:
    # DDS on the loopback only, in a domain of this process (as tests/conftest.py sets it)
    from ohio_core.ros_env import local_ros_env

    local_ros_env()
    sys.path.insert(0, str(REPO / "tests" / "support"))
    from ohio_core.data import topics as tp
    from ros_harness import Processes, Spinner, probe, wait_for
    from ros_launch import LAUNCH_DIR, command_line, read_launch
    from std_msgs.msg import Float64MultiArray

    tmp = work / out.name
    launch = read_launch(LAUNCH_DIR / "sim_arm.launch.py", {"record": "true", "bag": str(tmp),
                                                             "publish_rate": RECORDER_RATE})
    nodes = {n.name: n for n in launch.nodes if n.enabled}
    procs = Processes(work)
    spinner = Spinner()
    try:
        _, inbox, _ = probe(spinner, subscriptions=[(Float64MultiArray, tp.TASK_STATE)])
        procs.start("recorder", command_line(nodes["recorder"], work))
        wait_for(lambda: "recording" in procs.output("recorder"), what="the recorder up")
        for name in ("controller", "policy"):
            procs.start(name, command_line(nodes[name], work))
        # the simulator last, once the loop is up: it publishes (time runs) while it waits for a command
        for name, line in (("controller", "controller at 50 Hz"), ("policy", "every 5 control periods")):
            wait_for(lambda: line in procs.output(name), what=f"{name} up")
        # and no task state before the policy, the recorder and the probe subscribe to it
        procs.start("mujoco_sim", command_line(nodes["mujoco_sim"], work) + [
            "-p", f"horizon:={RECORDER_HORIZON}", "-p", "start_subscribers:=3"])

        def episode_1_ended():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            for msg in inbox[tp.TASK_STATE].all():
                if msg.data[tp.TS["episode"]] == 1 and msg.data[tp.TS["last"]] == 1:
                    return True
            return False
        wait_for(episode_1_ended, timeout=240, what="episode 1 to end")
        sim = procs.procs["mujoco_sim"][0]
        sim.send_signal(2)                  # the simulator first: no further episode starts
        sim.wait(timeout=60)
    finally:
        spinner.close()
        codes = procs.stop()
    if codes != {"mujoco_sim": 0, "controller": 0, "policy": 0, "recorder": 0}:
        raise RuntimeError(f"node exit codes {codes}\n{procs.report()}")
    if "'/ohio/task_state': 0" in procs.output("recorder"):
        raise RuntimeError(f"the recorder received no task state (DDS discovery too slow?); run again\n"
                           f"{procs.report()}")
    _move_bag(tmp, out)


DRIVER_GAP_NS = 10**9       # pause between the episodes of the driver logs


def _stamp(ts, ns: int):
    T = ts.types
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
                                    frame_id="")


def driver_log(out: Path, work: Path, js_topic: str, cmd_topic: str, cmd_type: str, names: tuple,
               with_gravity: bool) -> None:
    """The clean episodes as a robot driver logs them (no task state): joint states (``names``,
    position, velocity, and as measured effort the torque with g(q) of the period that ended) and
    the commanded torque (``cmd_type``: ``Float64MultiArray`` data in joint order, or ``JointState``
    effort by name) at every control period's start, with g(q) or without it (``with_gravity``);
    episodes 1 s apart."""
    from ohio_core.data import topics as tp
    from ohio_core.data.bags import read_bag
    from ohio_core.data.gravity import shift_gravity

    ts = _typestore()
    T = ts.types
    rows = read_bag(BAGS / CLEAN)
    command = rows.tau if with_gravity else shift_gravity(rows.tau, rows.q, -1)
    conns = [(js_topic, tp.JOINT_STATE_TYPE), (cmd_topic, cmd_type)]
    msgs, start = [], int(rows.stamp[0])
    for e in np.unique(rows.episode):
        idx = np.flatnonzero(rows.episode == e)
        offset = start - int(rows.stamp[idx[0]])
        for n, i in enumerate(idx):
            ns = int(rows.stamp[i]) + offset
            measured = rows.tau[i - 1] if n else np.zeros(7)
            js = T[tp.JOINT_STATE_TYPE](header=_stamp(ts, ns), name=list(names), position=rows.q[i].copy(),
                                        velocity=rows.qd[i].copy(), effort=measured.copy())
            if cmd_type == tp.JOINT_STATE_TYPE:
                cmd = T[cmd_type](header=_stamp(ts, ns), name=list(names), position=np.zeros(0), velocity=np.zeros(0),
                                  effort=command[i].copy())
            else:
                cmd = T[cmd_type](layout=T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
                                  data=command[i].copy())
            msgs += [(0, ns, bytes(ts.serialize_cdr(js, tp.JOINT_STATE_TYPE))),
                     (1, ns, bytes(ts.serialize_cdr(cmd, cmd_type)))]
        start = int(rows.stamp[idx[-1]]) + offset + DRIVER_GAP_NS
    tmp = work / out.name
    write_raw(tmp, conns, msgs)
    _move_bag(tmp, out)


def _ros2_control_log(out: Path, work: Path, with_gravity: bool) -> None:
    from ohio_core.data import topics as tp
    driver_log(out, work, tp.JOINT_STATES, "/forward_effort_controller/commands", tp.FLOAT64_MULTI_ARRAY,
               tp.ARM_JOINTS, with_gravity)


@bag("gravity_in_commands", "the clean episodes as a ros2_control driver's log (no task state): joint states "
     "and the commanded torques with g(q), at each control period's start", topics="ros2_control")
def gravity_in_commands(out: Path, work: Path) -> None:
    _ros2_control_log(out, work, with_gravity=True)


@bag("gravity_by_driver", "gravity_in_commands with g(q) taken out of the commanded torques (a driver that adds "
     "it, as libfranka does)", topics={"commands": "/forward_effort_controller/commands", "task_state": None,
                                       "ee_goal": None, "gripper": None,
                                       "commanded_effort_includes_gravity": False})
def gravity_by_driver(out: Path, work: Path) -> None:
    _ros2_control_log(out, work, with_gravity=False)


FRANKA_ROS2_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))


@bag("franka_ros2", "the clean episodes as franka_ros2 logs them: franka_robot_state_broadcaster's measured joint "
     "states (q, dq, tau_J) and desired joint states (effort tau_J_d, without g(q))", topics="franka_ros2")
def franka_ros2(out: Path, work: Path) -> None:
    from ohio_core.data import topics as tp
    driver_log(out, work, "/franka_robot_state_broadcaster/measured_joint_states",
               "/franka_robot_state_broadcaster/desired_joint_states", tp.JOINT_STATE_TYPE, FRANKA_ROS2_JOINTS,
               with_gravity=False)


#: franka_msgs/FrankaState as franka_ros (ROS 1) defines it, less the fields the reader does not use
#: beyond a few (the reader decodes with the definition the bag carries)
FRANKA_STATE_MSG = """std_msgs/Header header
float64[7] q
float64[7] q_d
float64[7] dq
float64[7] dq_d
float64[7] tau_J
float64[7] tau_J_d
float64[7] dtau_J
uint8 ROBOT_MODE_MOVE=2
uint8 robot_mode
================================================================================
MSG: std_msgs/Header
uint32 seq
time stamp
string frame_id
"""
FRANKA_STATES = "/franka_state_controller/franka_states"
TRUNCATE_ROS1_TO = 0.6


def franka_ros1_bag(path: Path) -> None:
    """The clean episodes (their rows) as franka_ros logs them in a ROS 1 bag: one FrankaState per
    control period's start (q, dq; tau_J the measured torque of the period that ended, with g(q);
    tau_J_d the commanded torque without g(q)), episodes 1 s apart."""
    from rosbags.rosbag1 import Writer as Ros1Writer

    from ohio_core.data.bags import read_bag
    from ohio_core.data.gravity import shift_gravity

    msgtype = "franka_msgs/msg/FrankaState"
    ts = get_typestore(Stores.EMPTY)
    ts.register(get_types_from_msg(FRANKA_STATE_MSG, msgtype))
    msgdef, md5 = ts.generate_msgdef(msgtype, ros_version=1)
    State, Header, Time = ts.types[msgtype], ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    rows = read_bag(BAGS / CLEAN)
    command = shift_gravity(rows.tau, rows.q, -1)
    if path.exists():
        path.unlink()
    with Ros1Writer(path) as w:
        conn = w.add_connection(FRANKA_STATES, msgtype, msgdef=msgdef, md5sum=md5,
                                callerid="/franka_state_controller")
        start, seq = int(rows.stamp[0]), 0
        for e in np.unique(rows.episode):
            idx = np.flatnonzero(rows.episode == e)
            offset = start - int(rows.stamp[idx[0]])
            for n, i in enumerate(idx):
                ns = int(rows.stamp[i]) + offset
                m = State(header=Header(seq=seq, stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=""),
                          q=rows.q[i].copy(), q_d=rows.q[i].copy(), dq=rows.qd[i].copy(), dq_d=rows.qd[i].copy(),
                          tau_J=(rows.tau[i - 1] if n else np.zeros(7)).copy(), tau_J_d=command[i].copy(),
                          dtau_J=np.zeros(7), robot_mode=2)
                w.write(conn, ns, bytes(ts.serialize_ros1(m, msgtype)))
                seq += 1
            start = int(rows.stamp[idx[-1]]) + offset + DRIVER_GAP_NS


@bag("franka_ros1", "the clean episodes as franka_ros logs them: a ROS 1 .bag of franka_msgs/FrankaState (q, dq, "
     "tau_J; tau_J_d without g(q)) with the definition it carries", topics="franka_ros1", file="franka_ros1.bag")
def franka_ros1(out: Path, work: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    franka_ros1_bag(out / "franka_ros1.bag")


@bag("franka_ros1_truncated", f"franka_ros1's .bag cut to {TRUNCATE_ROS1_TO:.0%} of its bytes", topics="franka_ros1",
     file="franka_ros1_truncated.bag", error="cannot open the ROS 1 bag (truncated or corrupt?)")
def franka_ros1_truncated(out: Path, work: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "franka_ros1_truncated.bag"
    franka_ros1_bag(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * TRUNCATE_ROS1_TO)])


# --------------------------------------------------------------------------------------------
# expected.json
# --------------------------------------------------------------------------------------------


def summary(account: dict) -> dict:
    """The account of a read, without the bag's path (which depends on the checkout)."""
    return {k: v for k, v in account.items() if k != "bag"}


def expectation(name: str) -> dict:
    """What read_bag gives for the bag now, checked against what the bag is meant to be."""
    from ohio_core.data.bags import BagError, read_bag

    spec = BUILDERS[name]
    path = BAGS / name / spec["file"] if spec["file"] else BAGS / name
    entry = {"description": spec["description"]}
    if spec["topics"] is not None:
        entry["topics"] = spec["topics"]
    if spec["file"]:
        entry["file"] = spec["file"]
    try:
        traj = read_bag(path, topic_map(spec["topics"]))
    except BagError as exc:
        if spec["error"] is None or spec["error"] not in str(exc):
            raise RuntimeError(f"{name}: expected {'a read' if spec['error'] is None else spec['error']!r}, "
                               f"got: {exc}") from None
        entry["error"] = spec["error"]
        return entry
    if spec["error"] is not None:
        raise RuntimeError(f"{name}: read {len(traj)} rows, expected the error {spec['error']!r}")
    account = traj.meta["account"]
    if spec["needs_ros"]:
        entry["structural"] = {"topics_in_bag": account["topics_in_bag"], "episodes": account["episodes"],
                               "min_rows": 1}
        if not len(traj):
            raise RuntimeError(f"{name}: no rows read: {account}")
        return entry
    if spec["same_rows_as"]:
        ref = read_bag(BAGS / spec["same_rows_as"])
        for field in ("t", "q", "qd", "tau", "reward", "success", "obs", "episode", "step", "timeout", "terminal",
                      "goal", "gripper"):
            x, y = getattr(traj, field), getattr(ref, field)
            if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y, equal_nan=True)):
                raise RuntimeError(f"{name}: {field} differs from {spec['same_rows_as']}")
        entry["same_rows_as"] = spec["same_rows_as"]
    entry["account"] = summary(account)
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=sorted(BUILDERS), metavar="NAME",
                    help=f"rebuild only this bag (repeatable); one of {', '.join(BUILDERS)}")
    ap.add_argument("--skip-ros", action="store_true", help="leave recorder_mcap as it is")
    ap.add_argument("--expected-only", action="store_true",
                    help="build no bag; record what the reader gives for the bags on disk")
    args = ap.parse_args(argv)
    names = [n for n in BUILDERS if (not args.only or n in args.only)
             and not (args.skip_ros and BUILDERS[n]["needs_ros"])]
    BAGS.mkdir(parents=True, exist_ok=True)
    expected = json.loads(EXPECTED.read_text())["bags"] if EXPECTED.exists() else {}
    for name in [] if args.expected_only else names:
        print(f"[golden] {name}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"golden_{name}_") as work:
            BUILDERS[name]["fn"](BAGS / name, Path(work))
    for name in names:
        expected[name] = expectation(name)
    expected = {n: expected[n] for n in BUILDERS if n in expected}
    EXPECTED.write_text(json.dumps({
        "about": "What read_bag gives for each bag of tests/golden/bags (written by "
                 "tests/golden/make_golden.py; see its docstring).",
        "bags": expected}, indent=1) + "\n")
    for name in names:
        size = sum(f.stat().st_size for f in (BAGS / name).rglob("*") if f.is_file())
        e = expected[name]
        said = e["error"] if "error" in e else e.get("account", e.get("structural"))
        print(f"  {name:24s} {size / 1024:6.1f} KiB  {json.dumps(said)[:120]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
