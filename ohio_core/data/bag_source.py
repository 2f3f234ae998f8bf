"""Opening a rosbag2 bag: the files that make it, its metadata, its topics, and the message types
of the topics a reader uses (``open_rosbag2`` -> ``OpenBag``, a ``bag_storage.StoredBag``).

A bag is a folder with ``metadata.yaml`` and its data files, one ``.mcap`` or ``.db3`` file, or the
folder of a split recording whose ``metadata.yaml`` is missing (a recording killed before it wrote
it, a copy that lost it): data files ``<name>_<n>.mcap`` (or ``.db3``), as ``ros2 bag record`` names
them. Such a folder is read as one bag, its files in the order of their numbers (as rosbag2 reads
a split bag), and its metadata is rebuilt from the files as ``ros2 bag reindex`` rebuilds it
(``rebuild_metadata``; ``write_metadata`` writes it to ``metadata.yaml``).

Only the topics a reader uses must be readable. A topic serialized in another format than CDR, or
whose stored message definition ``rosbags`` cannot parse (rosbag2 stores a service-event topic's
definition as the service's ``.srv`` text), is listed in ``OpenBag.unreadable`` with the reason
and skipped; a used one is an error naming the topic. Messages are decoded with the definitions
the bag stores, checked against the type hashes it records; types it stores no definition of
(rosbag2 before Iron) are decoded with the ROS 2 Jazzy definitions.

Errors are ``BagError`` naming the bag; "truncated or corrupt" is said only of data files the
storage reader cannot read.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml
from rosbags.interfaces import MessageDefinitionFormat
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.rosbag2.metadata import dump_qos_v9
from rosbags.rosbag2.reader import DirectoryReader
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from ohio_core.data.bag_common import BagError, one_line, opened, typestore, unparsable_definition

#: storage of each data-file suffix
STORAGES = {".mcap": "mcap", ".db3": "sqlite3"}
#: a data file of a split recording, named as rosbag2 names them (and ``ros2 bag reindex`` finds them)
SPLIT_FILE = re.compile(r"(?P<prefix>.+)_(?P<index>\d+)(?P<suffix>\.mcap|\.db3)")
#: the metadata version ``write_metadata`` writes (rosbag2 Jazzy)
METADATA_VERSION = 9
#: beginnings of the ``rosbags`` errors about a folder's metadata.yaml (not about its data files)
_METADATA_PROBLEMS = ("Could not read metadata", "Could not load YAML", "Rosbag2 version", "Some database files",
                      "Storage plugin", "Compression format", "A metadata key is missing", "Invalid bag metadata")
_MCAP_MAGIC = b"\x89MCAP0\r\n"


class _Schemas(dict):
    """An MCAP file's schemas as ``rosbags``' MCAP reader collects them, where a schema in an encoding
    it does not know (rosbag2 writes ``unknown`` for a type whose definition it did not find) is
    kept as one without a stored definition (``unknown_encodings``: schema id -> encoding), instead
    of failing the whole file."""

    KNOWN = ("ros2msg", "ros2idl", "omgidl", "")

    def __init__(self):
        super().__init__()
        self.unknown_encodings: dict[int, str] = {}

    def __setitem__(self, key, schema):
        if schema.encoding not in self.KNOWN:
            self.unknown_encodings[key] = schema.encoding
            schema = schema._replace(encoding="", data="")
        super().__setitem__(key, schema)


class _McapReader(McapReader):
    """``rosbags``' MCAP storage reader, reading a file whose schemas include an unknown encoding."""

    def __init__(self, path):
        super().__init__(path)
        self.schemas = _Schemas()


class _DirectoryReader(DirectoryReader):
    STORAGE_PLUGINS = {**DirectoryReader.STORAGE_PLUGINS, "mcap": _McapReader}


class _Reader(Reader):
    """``rosbags``' rosbag2 reader with the MCAP storage reader above."""

    STORAGE_PLUGINS = {**Reader.STORAGE_PLUGINS, "dir": _DirectoryReader, ".mcap": _McapReader}


def split_files(folder: Path) -> list[Path]:
    """The data files of the split recording in ``folder``: every ``.mcap``/``.db3`` file there,
    provided all are named ``<name>_<n>`` with one name and one suffix; in the order of their
    numbers. [] when the folder holds no such set."""
    files = [f for f in folder.iterdir() if f.is_file() and f.suffix in STORAGES]
    found = [SPLIT_FILE.fullmatch(f.name) for f in files]
    if not files or not all(found) or len({(m["prefix"], m["suffix"]) for m in found}) != 1:
        return []
    return [f for _, f in sorted(zip((int(m["index"]) for m in found), files))]


def is_bag_folder(folder: Path) -> bool:
    """A folder with ``metadata.yaml``, or one holding a split recording's data files."""
    return (folder / "metadata.yaml").is_file() or bool(split_files(folder))


def read_metadata_yaml(folder: Path) -> dict:
    """``rosbag2_bagfile_information`` of a folder's metadata.yaml ({} when absent or unreadable)."""
    meta = folder / "metadata.yaml"
    if not meta.is_file():
        return {}
    try:
        data = yaml.safe_load(meta.read_text())
        return dict(data.get("rosbag2_bagfile_information") or {})
    except Exception:
        return {}


# --------------------------------------------------------------------------------------------
# The copy of the bag's metadata that rosbag2 stores in each data file it closes
# --------------------------------------------------------------------------------------------


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    return buf[pos + 4: pos + 4 + n].decode(), pos + 4 + n


def _mcap_stored_metadata(file: Path) -> str:
    """``serialized_metadata`` of an MCAP file's ``rosbag2`` metadata record, found through the
    metadata index of the file's summary ("" when the file has no summary or no such record)."""
    with file.open("rb") as f:
        size = f.seek(0, 2)
        if size < 8 + 37:
            return ""
        f.seek(size - 37)
        footer = f.read(37)
        if footer[-8:] != _MCAP_MAGIC or footer[0] != 0x02:
            return ""
        (summary,) = struct.unpack_from("<Q", footer, 9)
        if not summary:
            return ""
        f.seek(summary)
        while f.tell() < size - 37:
            op, length = struct.unpack("<BQ", f.read(9))
            body = f.read(length)
            if op != 0x0D:                                 # metadata index: offset, length, name
                continue
            offset, rec_len = struct.unpack_from("<QQ", body)
            if _string(body, 16)[0] != "rosbag2":
                continue
            f.seek(offset)
            rec = f.read(rec_len)[9:]                     # metadata record: name, then a string map
            _, pos = _string(rec, 0)
            (map_len,) = struct.unpack_from("<I", rec, pos)
            pos, end = pos + 4, pos + 4 + map_len
            while pos < end:
                key, pos = _string(rec, pos)
                value, pos = _string(rec, pos)
                if key == "serialized_metadata":
                    return value
            return ""
    return ""


def _db3_stored_metadata(file: Path) -> str:
    """The latest row of a .db3 file's ``metadata`` table ("" when it has none)."""
    con = sqlite3.connect(f"file:{file}?mode=ro&immutable=1", uri=True)
    try:
        if not con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='metadata'").fetchone():
            return ""
        row = con.execute("SELECT metadata FROM metadata ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else ""
    finally:
        con.close()


def stored_metadata(file: Path) -> dict:
    """The bag metadata a data file carries (rosbag2 writes the bag's metadata into every file it
    closes: an MCAP ``rosbag2`` metadata record, a .db3 ``metadata`` table); {} when it has none
    (e.g. the last file of a killed recording)."""
    try:
        text = _mcap_stored_metadata(file) if file.suffix == ".mcap" else _db3_stored_metadata(file)
        data = yaml.safe_load(text) if text else None
    except (OSError, sqlite3.Error, struct.error, UnicodeDecodeError, yaml.YAMLError):
        return {}
    if isinstance(data, dict) and isinstance(data.get("rosbag2_bagfile_information"), dict):
        data = data["rosbag2_bagfile_information"]
    return data if isinstance(data, dict) else {}


def _custom_data_of_files(files: list[Path]) -> tuple[dict, str]:
    """(custom_data, ros_distro) as ``ros2 bag reindex`` takes them: from the latest file whose stored
    metadata has them."""
    custom, distro = {}, ""
    for f in files:
        stored = stored_metadata(f)
        custom = dict(stored.get("custom_data") or {}) or custom
        distro = str(stored.get("ros_distro") or "") or distro
    return custom, distro


def bag_custom_data(path: Path) -> dict:
    """``custom_data`` of a bag: its metadata.yaml's, or for a split recording without one, that its
    data files store ({} for a single data file or when none is recorded)."""
    path = Path(path)
    if not path.is_dir():
        return {}
    if (path / "metadata.yaml").is_file():
        return dict(read_metadata_yaml(path).get("custom_data") or {})
    return _custom_data_of_files(split_files(path))[0]


# --------------------------------------------------------------------------------------------
# Rebuilding metadata.yaml (ros2 bag reindex)
# --------------------------------------------------------------------------------------------


def rebuild_metadata(files: list[Path], readers: list[Reader]) -> dict:
    """``rosbag2_bagfile_information`` (version 9) of a split recording, rebuilt from its open data
    files as ``ros2 bag reindex`` does: each file's start, duration (last - first message time) and
    message count; each topic once, with the summed count and the type, serialization format and
    offered QoS the files record; type hashes, ``custom_data`` and ``ros_distro`` from the metadata
    the files store (MCAP files record type hashes nowhere else)."""
    entries, topics, start, end = [], {}, None, None
    hashes: dict[str, str] = {}
    for f in files:
        for t in stored_metadata(f).get("topics_with_message_count") or []:
            meta = (t.get("topic_metadata") or {}) if isinstance(t, dict) else {}
            if meta.get("name") and meta.get("type_description_hash"):
                hashes[meta["name"]] = meta["type_description_hash"]
    for f, r in zip(files, readers):
        n = r.message_count
        first, last = (r.start_time, r.end_time - 1) if n else (0, 0)
        if n:
            start = first if start is None else min(start, first)
            end = last if end is None else max(end, last)
        entries.append({"path": f.name, "starting_time": {"nanoseconds_since_epoch": first},
                        "duration": {"nanoseconds": last - first}, "message_count": n})
        for c in r.connections:
            t = topics.setdefault(c.topic, {"topic_metadata": {
                "name": c.topic, "type": c.msgtype, "serialization_format": c.ext.serialization_format,
                "offered_qos_profiles": dump_qos_v9(list(c.ext.offered_qos_profiles)),
                "type_description_hash": c.digest or hashes.get(c.topic, "")}, "message_count": 0})
            t["message_count"] += int(c.msgcount)
    custom, distro = _custom_data_of_files(files)
    start, end = (start, end) if start is not None else (0, 0)
    return {"version": METADATA_VERSION, "storage_identifier": STORAGES[files[0].suffix],
            "duration": {"nanoseconds": end - start}, "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": sum(e["message_count"] for e in entries),
            "topics_with_message_count": [topics[k] for k in sorted(topics)],
            "compression_format": "", "compression_mode": "", "relative_file_paths": [f.name for f in files],
            "files": entries, "custom_data": custom, "ros_distro": distro}


def write_metadata(folder: str | Path) -> dict:
    """Rebuild the ``metadata.yaml`` of a split recording's folder that has none (``ros2 bag
    reindex``), write it, and read the bag back through it: every message the data files hold
    must come back, per topic (else the file is removed again). Returns the metadata written."""
    folder = Path(folder)
    meta = folder / "metadata.yaml"
    if not folder.is_dir():
        raise BagError(f"{folder}: not a folder (only a split recording's folder has a metadata.yaml to rebuild)")
    if meta.exists():
        raise BagError(f"{folder}: already has a metadata.yaml; move it away to rebuild it from the data files")
    bag = open_rosbag2(folder)
    try:
        info = bag.metadata
    finally:
        bag.close()
    tmp = meta.with_name("metadata.yaml.tmp")
    tmp.write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False, default_flow_style=False))
    tmp.replace(meta)
    want = {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}
    try:
        bag = open_rosbag2(folder)
        try:
            read = {t: 0 for t in want}
            for conn, _, _ in bag.messages(bag.connections):
                read[conn.topic] = read.get(conn.topic, 0) + 1
        finally:
            bag.close()
    except BagError as exc:
        meta.unlink()
        raise BagError(f"{folder}: the rebuilt metadata.yaml does not open ({exc}); removed it") from None
    if read != want:
        meta.unlink()
        raise BagError(f"{folder}: through the rebuilt metadata.yaml the files give {read} messages per topic, "
                       f"not {want}; removed it")
    return info


# --------------------------------------------------------------------------------------------
# Opening a bag
# --------------------------------------------------------------------------------------------


def _parse_definition(conn) -> dict:
    """The types a connection's stored message definition defines (as ``rosbags`` AnyReader parses it)."""
    text = conn.msgdef.data
    if conn.msgdef.format == MessageDefinitionFormat.MSG:
        return get_types_from_msg(text, conn.msgtype)
    sep = "=" * 80 + "\n"
    if not text.startswith(f"{sep}IDL: "):
        return get_types_from_idl(text)
    typs: dict = {}
    for part in text.split(sep)[1:]:
        typs.update(get_types_from_idl(part.split("\n", 1)[1]))
    return typs


def _is_service_event(conn) -> bool:
    return "\nSRV: " in "\n" + conn.msgdef.data or bool(re.search(r"/srv/\w+_Event$", conn.msgtype))


class OpenBag:
    """An open rosbag2 bag (``open_rosbag2``): its connections (``rosbags`` Connection tuples, one per topic and
    data file), start/end times and message count, ``info`` (storage, files, metadata version,
    compression; ``metadata_rebuilt`` when metadata.yaml was missing), ``metadata`` (metadata.yaml's
    or the rebuilt one), ``custom_data``, and ``unreadable`` (topic -> why it cannot be read).

    ``use(topics)`` makes the types of the topics a reader needs ready (or names the topic that
    cannot be read); then ``messages(connections)`` and ``deserialize(raw, msgtype)`` read them.
    """

    def __init__(self, path: Path):
        self.path = path
        self.readers: list[Reader] = []
        self.metadata: dict = {}
        self.info: dict = {}
        self.unreadable: dict[str, str] = {}
        self.typestore = None
        self._parsed: dict[str, dict] = {}

    # -- what the bag holds --------------------------------------------------------------------
    @property
    def connections(self) -> list:
        return [c for r in self.readers for c in r.connections]

    @property
    def message_count(self) -> int:
        return sum(r.message_count for r in self.readers)

    @property
    def start_time(self) -> int:
        return min(r.start_time for r in self.readers)

    @property
    def end_time(self) -> int:
        """Time after the last message (ns)."""
        return max(r.end_time for r in self.readers)

    @property
    def custom_data(self) -> dict:
        return dict(self.metadata.get("custom_data") or {})

    def topics(self) -> dict[str, dict]:
        """topic -> {types, messages, serialization, definition, readable (None or why not)}, sorted."""
        out: dict[str, dict] = {}
        for c in sorted(self.connections, key=lambda c: c.topic):
            t = out.setdefault(c.topic, {"types": [], "messages": 0, "serialization": [], "definition": []})
            t["messages"] += int(c.msgcount)
            fmt = {MessageDefinitionFormat.MSG: "ros2msg", MessageDefinitionFormat.IDL: "ros2idl"}.get(
                c.msgdef.format, "none stored")
            for key, value in (("types", c.msgtype), ("serialization", c.ext.serialization_format),
                               ("definition", fmt)):
                if value not in t[key]:
                    t[key].append(value)
        for topic, t in out.items():
            t["unreadable"] = self.unreadable.get(topic)
        return out

    # -- reading -------------------------------------------------------------------------------
    def use(self, topics: dict[str, str]) -> list:
        """The connections of ``topics`` (topic -> what the reader uses it for), their message types
        ready to decode: the bag's definitions (checked against the type hashes it records), ROS 2
        Jazzy's where it stores none. A topic that cannot be read is a ``BagError`` naming it."""
        conns = [c for c in self.connections if c.topic in topics]
        for c in conns:
            if c.topic in self.unreadable:
                raise BagError(f"{self.path}: topic {c.topic!r} ({topics[c.topic]}) cannot be read: "
                               f"{self.unreadable[c.topic]}")
        typs: dict = {}
        for c in conns:
            typs.update(self._parsed.get(c.msgtype, {}))
        if any(c.msgtype not in typs for c in conns):
            typs = {**typestore().fielddefs, **typs}
        ts = get_typestore(Stores.EMPTY)
        try:
            ts.register(typs)
        except Exception as exc:
            raise BagError(f"{self.path}: the message definitions the bag stores for "
                           f"{sorted({c.topic for c in conns})} conflict: {one_line(exc)}") from None
        for c in conns:
            if c.msgtype not in ts.fielddefs:
                raise BagError(f"{self.path}: topic {c.topic!r} ({topics[c.topic]}): the bag stores no definition of "
                               f"{c.msgtype} and it is not a ROS 2 Jazzy type")
            if c.digest.startswith("RIHS01_") and ts.hash_rihs01(c.msgtype) != c.digest:
                raise BagError(f"{self.path}: topic {c.topic!r} ({topics[c.topic]}): the definition of {c.msgtype} "
                               f"does not match the type hash the bag records ({c.digest})")
        self.typestore = ts
        return conns

    def messages(self, connections: Iterable) -> Iterator[tuple]:
        """(connection, log time ns, raw bytes) of ``connections``, file after file (as rosbag2 reads
        a split bag), each file in time order."""
        wanted = list(connections)
        parts = []
        for r in self.readers:
            own = [c for c in wanted if any(c is x for x in r.connections)]
            if own:
                parts.append(r.messages(connections=own))
        return itertools.chain.from_iterable(parts)

    def deserialize(self, raw, msgtype: str):
        return self.typestore.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        for r in self.readers:
            try:
                r.close()
            except Exception:
                pass
        self.readers = []

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> None:
        path = self.path
        if not path.exists():
            raise BagError(f"{path}: no such bag (file or folder not found)")
        if path.is_dir():
            if (path / "metadata.yaml").is_file():
                self._open_folder()
            else:
                files = split_files(path)
                if not files:
                    raise BagError(f"{path}: not a rosbag2 folder (no metadata.yaml, and no data files named "
                                   f"<name>_<n>.mcap or <name>_<n>.db3 to rebuild it from)")
                self._open_files(files)
                self.metadata = rebuild_metadata(files, self.readers)
                names = files[0].name if len(files) == 1 else f"{files[0].name} .. {files[-1].name}"
                self.info = {"storage": self.metadata["storage_identifier"], "files": len(files),
                             "compression": "none",
                             "metadata_rebuilt": f"no metadata.yaml: {len(files)} data file(s) of one split "
                                                 f"recording ({names}) read as one bag, in the order of their numbers"}
        elif path.suffix in STORAGES:
            self._open_files([path])
            self.info = {"storage": STORAGES[path.suffix], "files": 1}
        else:
            raise BagError(f"{path}: not a rosbag2 bag: expected a folder with metadata.yaml, a .mcap or a .db3 file "
                           f"(or a ROS 1 .bag file)")
        self._survey()

    def _open_folder(self) -> None:
        path = self.path
        md = read_metadata_yaml(path)
        reader = _Reader(path)
        try:
            reader.open()
        except ReaderError as exc:
            text = one_line(exc)
            if text.startswith("Serialization format"):
                self._open_listed_files(md)
            elif text.startswith(_METADATA_PROBLEMS):
                raise BagError(f"{path}: cannot open the bag: metadata.yaml: {text}") from None
            else:
                raise BagError(f"{path}: cannot open the bag (truncated or corrupt?): {text}") from None
        except Exception as exc:
            raise BagError(f"{path}: cannot open the bag (truncated or corrupt?): {type(exc).__name__}: "
                           f"{one_line(exc)}") from None
        else:
            self.readers = [reader]
        self.metadata = md
        self.info = {"storage": md.get("storage_identifier"), "metadata_version": md.get("version"),
                     "files": len(md.get("relative_file_paths") or []),
                     "compression": " ".join(str(x) for x in (md.get("compression_format"), md.get("compression_mode"))
                                             if x) or "none"}

    def _open_listed_files(self, md: dict) -> None:
        """A folder whose metadata.yaml lists a topic in another serialization format than CDR (which
        makes ``rosbags`` refuse the whole folder): its data files, opened one by one."""
        path = self.path
        listed = [t["topic_metadata"] for t in md.get("topics_with_message_count") or []]
        other = [(t["name"], t.get("serialization_format")) for t in listed if t.get("serialization_format") != "cdr"]
        mode = str(md.get("compression_mode") or "").lower()
        if mode in ("file", "message"):
            topic, fmt = other[0]
            raise BagError(f"{path}: topic {topic!r} is serialized as {fmt!r}, not CDR, in a bag compressed per "
                           f"{mode}: rosbags reads such a bag only when every topic is CDR")
        self._open_files([path / Path(p).name for p in md.get("relative_file_paths") or []])

    def _open_files(self, files: list[Path]) -> None:
        for f in files:
            reader = _Reader(f)
            try:
                reader.open()
            except Exception as exc:
                where = "" if f == self.path else f" ({f.name})"
                raise BagError(f"{self.path}: cannot open the bag (truncated or corrupt?){where}: "
                               f"{type(exc).__name__}: {one_line(exc)}") from None
            self.readers.append(reader)

    def _survey(self) -> None:
        """Which topics cannot be read, and why; the stored definitions that parse."""
        jazzy = typestore().fielddefs
        for c in self.connections:
            fmt = c.ext.serialization_format
            if fmt != "cdr":
                self.unreadable[c.topic] = f"serialized as {fmt!r}, not CDR (the reader decodes CDR only)"
            elif c.msgdef.format == MessageDefinitionFormat.NONE:
                if c.msgtype not in jazzy:
                    self.unreadable[c.topic] = f"no definition of {c.msgtype} stored, and it is not a ROS 2 Jazzy type"
            elif c.msgtype not in self._parsed:
                try:
                    self._parsed[c.msgtype] = _parse_definition(c)
                except Exception as exc:
                    if _is_service_event(c):
                        why = (f"a service event ({c.msgtype}): the definition rosbag2 stores for it is the "
                               f"service's .srv text, which rosbags cannot parse")
                    else:
                        why = unparsable_definition(c.msgtype, exc)
                    self.unreadable[c.topic] = why


def open_rosbag2(path: str | Path) -> OpenBag:
    """Open the rosbag2 bag at ``path`` (module docstring); ``BagError`` naming it when it cannot be opened."""
    return opened(OpenBag(Path(path)))
