"""The reader protocol every bag storage module meets (``StoredBag``), and ``open_bag``, which
opens a bag with the module of its storage: rosbag2 folders, ``.mcap`` and ``.db3`` files
(``data.bag_source``), ROS 1 ``.bag`` files (``data.bag_ros1``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from ohio_core.data.bag_ros1 import ROS1_SUFFIX, open_ros1_bag
from ohio_core.data.bag_source import STORAGES, open_rosbag2

#: suffixes of the files that are a bag by themselves
BAG_FILES = (*STORAGES, ROS1_SUFFIX)


class StoredBag(Protocol):
    """An open bag. ``connections``: ``rosbags`` Connection tuples (``topic``, ``msgtype``,
    ``msgcount``); ``info``: storage, files and what else the storage tells; ``unreadable``: topic ->
    why it cannot be read; ``use(topics)`` makes the types of those topics (topic -> what for) ready
    and returns their connections; ``messages`` yields (connection, log time ns, raw bytes) in the
    storage's order; ``deserialize`` decodes one."""

    path: Path
    info: dict
    metadata: dict
    unreadable: dict[str, str]

    @property
    def connections(self) -> list: ...
    @property
    def message_count(self) -> int: ...
    @property
    def start_time(self) -> int: ...
    @property
    def end_time(self) -> int: ...
    @property
    def custom_data(self) -> dict: ...
    def topics(self) -> dict[str, dict]: ...
    def use(self, topics: dict[str, str]) -> list: ...
    def messages(self, connections: Iterable) -> Iterator[tuple]: ...
    def deserialize(self, raw, msgtype: str): ...
    def close(self) -> None: ...


def open_bag(path: str | Path) -> StoredBag:
    """Open the bag at ``path`` with its storage's module; ``BagError`` naming it when it cannot be opened."""
    path = Path(path)
    if path.suffix == ROS1_SUFFIX and not path.is_dir():
        return open_ros1_bag(path)
    return open_rosbag2(path)
