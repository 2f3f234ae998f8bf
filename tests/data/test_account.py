"""Accounts are dataclasses whose mapping view is their JSON form: what sidecars and --json outputs
hold, with optional entries left out while unset, nested entries spread where the JSON has them
flat, and the totals of a run summing its bags (real reads and relabels of golden bags)."""

import json
from pathlib import Path

import pytest

from ohio_core.data.account import BagAccount, ReadAccount, RunAccount, SegmentCounts, Table
from ohio_core.data.bag_read import read_bag
from ohio_core.pipeline.bag_relabel import RelabelConfig, relabel_bags

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "bags"


def test_a_read_account_is_its_json_form():
    acc = read_bag(GOLDEN / "gap").meta["account"]
    assert isinstance(acc, ReadAccount)
    as_json = acc.to_dict()
    assert dict(acc) == as_json == json.loads(json.dumps(as_json))
    assert list(acc) == list(as_json)
    # the storage facts are top-level entries, as the bag's info
    assert "info" not in acc and acc["storage"] == acc.info["storage"] == "mcap"
    # optional entries: present when set, left out while unset
    assert acc["episodes_not_closed"] == acc.episodes_not_closed and acc.gaps_closed_by_timeout is not None
    assert acc.goal_frames is None and "goal_frames" not in acc and "goal_frames" not in as_json
    with pytest.raises(KeyError):
        acc["goal_frames"]
    # the view is a copy: changing it leaves the account alone
    view = acc["messages"]
    view.clear()
    assert acc.messages and acc["messages"] == acc.messages


def test_a_run_account_totals_its_bags_and_reports_them():
    bags = [GOLDEN / "clean_mcap", GOLDEN / "gap", GOLDEN / "truncated_mcap"]
    run = relabel_bags(bags, RelabelConfig(), workers=1, progress=False, skip_bad=True)
    total = run.account
    assert isinstance(total, RunAccount) and all(isinstance(b, BagAccount) for b in total.per_bag)
    assert [b.read.bag for b in total.per_bag] == [str(b) for b in bags[:2]]
    assert list(total.bags_skipped) == [str(bags[2])]
    for name in ("control_steps_in", "segments_built", "segments_written"):
        assert getattr(total.segments, name) == sum(getattr(b.segments, name) for b in total.per_bag) > 0, name
    assert total.rows_dropped_at_read == total.per_bag[1].read.dropped != {}
    # the JSON form: segment counts flat, each bag under its path with its read nested
    as_json = total.to_dict()
    assert as_json == json.loads(json.dumps(as_json)) == run.data.account
    assert as_json["segments_written"] == total.segments.segments_written and "segments" not in as_json
    gap = as_json["per_bag"][str(bags[1])]
    assert gap["read"] == total.per_bag[1].read.to_dict()
    assert gap["segments_built"] == total.per_bag[1].segments.segments_built
    # counts add alike from an account and from its JSON form
    again = SegmentCounts().add(total.per_bag[0].segments).add(total.per_bag[1].segments.to_dict())
    assert again.to_dict() == total.segments.to_dict()
    # the printout: a table of the bags (the skipped one last), a table of the totals, then lines
    bag_table, totals, *lines = total.report()
    assert isinstance(bag_table, Table)
    assert [row[0] for row in bag_table.rows] == ["clean_mcap", "gap", "truncated_mcap"]
    assert bag_table.rows[-1][-1].startswith("SKIPPED: cannot open the bag")
    assert ["segments written", total.segments.segments_written] in totals.rows
    assert any(line.startswith("  gap: task_state missing (step skipped): ") for line in lines)
