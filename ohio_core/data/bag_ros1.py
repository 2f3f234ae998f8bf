"""Opening a ROS 1 bag (a ``.bag`` file, format 2.0, as ``rosbag record`` writes it; franka_ros logs)
with ``rosbags.rosbag1``, for the reader protocol of ``data.bag_storage`` (``open_ros1_bag`` ->
``Ros1Bag``).

ROS 1 stores each connection's full message definition (``MSG:`` blocks for the types it uses); the
types of the topics a reader uses are registered from them (``rosbags.typesys.get_types_from_msg``)
and messages are decoded from ROS 1 serialization. Type names are read as ROS 2 names
(``franka_msgs/FrankaState`` -> ``franka_msgs/msg/FrankaState``). A definition that cannot be
parsed makes its topic unreadable (listed, and an error only for a topic the reader uses). A ROS 1
bag has no metadata beside its index: ``custom_data`` is empty.

Errors are ``BagError`` naming the file: not found, truncated or corrupt (no index, a bad magic).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from rosbags.rosbag1 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from ohio_core.data.bag_common import BagError, one_line, opened, unparsable_definition

ROS1_SUFFIX = ".bag"


class Ros1Bag:
    """An open ROS 1 bag (``data.bag_storage.StoredBag``)."""

    def __init__(self, path: Path):
        self.path = path
        self.reader: Reader | None = None
        self.info = {"storage": "rosbag1", "files": 1}
        self.metadata: dict = {}
        self.unreadable: dict[str, str] = {}
        self.typestore = None
        self._parsed: dict[str, dict] = {}

    @property
    def connections(self) -> list:
        return list(self.reader.connections) if self.reader else []

    @property
    def message_count(self) -> int:
        return self.reader.message_count

    @property
    def start_time(self) -> int:
        return self.reader.start_time

    @property
    def end_time(self) -> int:
        """Time after the last message (ns)."""
        return self.reader.end_time

    @property
    def custom_data(self) -> dict:
        return {}

    def topics(self) -> dict[str, dict]:
        """topic -> {types, messages, serialization, definition, unreadable (None or why)}, sorted."""
        out: dict[str, dict] = {}
        for c in sorted(self.connections, key=lambda c: c.topic):
            t = out.setdefault(c.topic, {"types": [], "messages": 0, "serialization": ["ros1"],
                                         "definition": ["ros1msg"]})
            t["messages"] += int(c.msgcount)
            if c.msgtype not in t["types"]:
                t["types"].append(c.msgtype)
        for topic, t in out.items():
            t["unreadable"] = self.unreadable.get(topic)
        return out

    def use(self, topics: dict[str, str]) -> list:
        """The connections of ``topics`` (topic -> what for), their types registered from the bag's
        definitions; a topic that cannot be read is a ``BagError`` naming it."""
        conns = [c for c in self.connections if c.topic in topics]
        typs: dict = {}
        for c in conns:
            if c.topic in self.unreadable:
                raise BagError(f"{self.path}: topic {c.topic!r} ({topics[c.topic]}) cannot be read: "
                               f"{self.unreadable[c.topic]}")
            typs.update(self._parsed[c.msgtype])
        ts = get_typestore(Stores.EMPTY)
        try:
            ts.register(typs)
        except Exception as exc:
            raise BagError(f"{self.path}: the message definitions the bag stores for "
                           f"{sorted({c.topic for c in conns})} conflict: {one_line(exc)}") from None
        self.typestore = ts
        return conns

    def messages(self, connections: Iterable) -> Iterator[tuple]:
        """(connection, log time ns, raw bytes) of ``connections``, in time order."""
        wanted = list(connections)
        return self.reader.messages(connections=wanted) if wanted else iter(())

    def deserialize(self, raw, msgtype: str):
        return self.typestore.deserialize_ros1(raw, msgtype)

    def close(self) -> None:
        if self.reader is not None:
            try:
                self.reader.close()
            except Exception:
                pass
            self.reader = None

    def _open(self) -> None:
        if not self.path.is_file():
            raise BagError(f"{self.path}: no such bag (file not found)")
        reader = Reader(self.path)
        try:
            reader.open()
        except Exception as exc:
            raise BagError(f"{self.path}: cannot open the ROS 1 bag (truncated or corrupt?): "
                           f"{type(exc).__name__}: {one_line(exc)}") from None
        self.reader = reader
        for c in self.connections:
            if c.msgtype in self._parsed or c.topic in self.unreadable:
                continue
            try:
                self._parsed[c.msgtype] = get_types_from_msg(c.msgdef.data, c.msgtype)
            except Exception as exc:
                self.unreadable[c.topic] = unparsable_definition(c.msgtype, exc)


def open_ros1_bag(path: str | Path) -> Ros1Bag:
    """Open the ROS 1 bag at ``path`` (module docstring); ``BagError`` naming it when it cannot be opened."""
    return opened(Ros1Bag(Path(path)))
