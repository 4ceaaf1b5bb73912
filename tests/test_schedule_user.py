"""A user's hand-written and hand-edited `schedule.json` files through `chiplex simulate`: every mistake is
one located error (file and JSON path, or the chips and steps involved) with exit code 1."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chiplex.cli import main

# Three chips on tpu-ring4 (a schedule may use fewer chips than its target has), written from
# docs/schedule-format.md alone: chip 0 computes and sends to 1, which computes and sends to 2.
HAND_WRITTEN: dict[str, Any] = {
    "format": "chiplex.schedule",
    "version": 1,
    "graph": "hand",
    "target": "tpu-ring4",
    "num_chips": 3,
    "samples_per_microbatch": 4,
    "chips": [
        {
            "chip": 0,
            "steps": [
                {
                    "type": "compute",
                    "op": "%a",
                    "kind": "nn.matmul",
                    "node": 0,
                    "flops": 1e6,
                    "bytes": 1000,
                    "weight_bytes": 0,
                    "duration_s": 1e-5,
                },
                {
                    "type": "send",
                    "msg": 0,
                    "to": 1,
                    "bytes": 65536,
                    "route": [0, 1],
                    "tensor": "%a",
                },
            ],
        },
        {
            "chip": 1,
            "steps": [
                {"type": "recv", "msg": 0, "from": 0, "bytes": 65536, "tensor": "%a"},
                {
                    "type": "compute",
                    "op": "%b",
                    "kind": "nn.relu",
                    "node": 1,
                    "flops": 1e3,
                    "bytes": 1000,
                    "weight_bytes": 0,
                    "duration_s": 2e-5,
                },
                {"type": "send", "msg": 1, "to": 2, "bytes": 8192, "route": [1, 2], "tensor": "%b"},
            ],
        },
        {
            "chip": 2,
            "steps": [
                {"type": "recv", "msg": 1, "from": 1, "bytes": 8192, "tensor": "%b"},
                {
                    "type": "compute",
                    "op": "%c",
                    "kind": "nn.add",
                    "node": 2,
                    "flops": 1e3,
                    "bytes": 1000,
                    "weight_bytes": 0,
                    "duration_s": 5e-6,
                },
            ],
        },
    ],
}


def write(tmp_path: Path, data: dict[str, Any], name: str = "schedule.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def simulate_file(
    path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    code = main(["simulate", str(path), "--microbatches", "8", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_hand_written_schedule_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = simulate_file(write(tmp_path, HAND_WRITTEN), capsys)
    assert code == 0, err
    # The slowest chip computes 20 us per micro-batch of 4 samples.
    assert "200,000.0 samples/s" in out and "period 20.000 us" in out


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # Entries reordered or renumbered by hand: the `chip` field must match the position.
        (
            lambda d: d["chips"][1].update(chip=2),
            "chips[1].chip: is 2, but entry 1 of chips is chip 1",
        ),
        # A destination past num_chips (here also past the target's 4 chips).
        (
            lambda d: d["chips"][0]["steps"][1].update(to=7, route=[0, 7]),
            "chips[0].steps[1].to: chip 7 does not exist (num_chips = 3: chips 0 to 2)",
        ),
        # Chip 3 exists on tpu-ring4 but not in this 3-chip schedule.
        (
            lambda d: d["chips"][2]["steps"][0].update(**{"from": 3}),
            "chips[2].steps[0].from: chip 3 does not exist",
        ),
        (
            lambda d: d["chips"][1]["steps"][2].update(route=[1, 3, 2]),
            "chips[1].steps[2].route[1]: chip 3 does not exist",
        ),
    ],
)
def test_chip_numbers_outside_the_schedule_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, expected: str
) -> None:
    data = copy.deepcopy(HAND_WRITTEN)
    edit(data)
    path = write(tmp_path, data)
    code, out, err = simulate_file(path, capsys)
    assert code == 1 and out == ""
    assert f"{path}: " in err and expected in err
    assert "Traceback" not in err


def _drop_recv_of_msg_1(d: dict[str, Any]) -> None:
    d["chips"][2]["steps"].pop(0)


def _shrink_recv_of_msg_0(d: dict[str, Any]) -> None:
    d["chips"][1]["steps"][0]["bytes"] = 100


def _recv_before_any_send(d: dict[str, Any]) -> None:
    # Chip 0 first waits for what chip 1 sends only after it heard from chip 0: a cycle.
    d["chips"][0]["steps"].insert(
        0, {"type": "recv", "msg": 2, "from": 1, "bytes": 64, "tensor": "%z"}
    )
    d["chips"][1]["steps"].append(
        {"type": "send", "msg": 2, "to": 0, "bytes": 64, "route": [1, 0], "tensor": "%z"}
    )


def _skip_a_hop(d: dict[str, Any]) -> None:
    d["chips"][0]["steps"][1].update(to=2, route=[0, 2])
    d["chips"][1]["steps"].pop(0)
    d["chips"][2]["steps"].insert(
        0, {"type": "recv", "msg": 0, "from": 0, "bytes": 65536, "tensor": "%a"}
    )
    d["chips"][1]["steps"][0]["duration_s"] = 1e-6


def _bad_message_table(d: dict[str, Any]) -> None:
    d["messages"] = [{"msg": 0, "src": 0, "dst": 1, "bytes": 5, "route": [0, 1]}]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            _drop_recv_of_msg_1,
            ["chips[1].steps[2] (chip 1: send msg 1 of %b to chip 2", "no chip receives message 1"],
        ),
        (
            _shrink_recv_of_msg_0,
            ["chips[1].steps[0] (chip 1: recv msg 0", "65536 bytes sent but 100 expected"],
        ),
        (
            _recv_before_any_send,
            [
                "deadlock",
                "chip 0 -> chip 1 -> chip 0",
                "chips[0].steps[0] (chip 0: recv msg 2 of %z from chip 1",
                "chips[1].steps[0] (chip 1: recv msg 0 of %a from chip 0",
            ],
        ),
        (
            _skip_a_hop,
            [
                "chips[0].steps[1] (chip 0: send msg 0",
                "uses 0->2, which is not a link of tpu-ring4",
                "the target routes chip 0 to chip 2 as [0, 1, 2]",
            ],
        ),
        (_bad_message_table, ["messages[0]: message 0 (0->1, 5 bytes"]),
    ],
)
def test_schedule_faults_name_the_file_and_the_steps_json_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, expected: list[str]
) -> None:
    data = copy.deepcopy(HAND_WRITTEN)
    edit(data)
    path = write(tmp_path, data)
    code, out, err = simulate_file(path, capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"chiplex: error: {path}: ")
    for needle in expected:
        assert needle in err
    assert "Traceback" not in err


def test_report_columns_are_per_micro_batch_and_check_by_hand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(HAND_WRITTEN)
    data["chips"][0]["steps"][0].update(weight_bytes=2048, weights_from_dram=True)
    code, out, err = simulate_file(write(tmp_path, data), capsys)
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    # Chip 0 computes 10 us of the 20 us period and streams 2 KiB of weights per micro-batch (not
    # 8 x 2 KiB over the run, which next to a per-micro-batch compute time reads as 8x the DRAM rate).
    assert rows["0"] == ["0", "10.000", "us", "50.0%", "2.00", "KiB"]
    # Link 0->1 carries 64 KiB per micro-batch: 65536 B / 4 GB/s = 16.384 us of the 20 us period.
    assert rows["0->1"] == ["0->1", "64.00", "KiB", "81.9%", "512.00", "KiB"]
    assert "8 micro-batches x 4 samples" in out


def test_one_micro_batch_is_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate_file(write(tmp_path, HAND_WRITTEN), capsys, "--microbatches", "1")
    assert code == 0 and "1 micro-batch x 4 samples" in out


def test_more_buffers_than_micro_batches_still_find_the_steady_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chiplex.runtime_sim.simulator import steady_period

    # 60 completions 1.0 s apart, then a faster drain. With 64 buffers no send ever waits for one,
    # so no pattern of 64 micro-batches exists; the period is still 1.0 s, not the drained mean.
    drained = [float(i) for i in range(60)] + [59.5, 60.0, 60.5, 61.0]
    assert steady_period(drained, 64) == (pytest.approx(1.0, rel=1e-12), True)
    assert steady_period(drained, 17) == (pytest.approx(1.0, rel=1e-12), True)
    # Through the command: chip 1's 20 us sets the pace whatever the buffers; before, the drain read
    # as a throughput above the analytic bound, flagged "no steady state" however many micro-batches.
    path = write(tmp_path, HAND_WRITTEN)
    code, out, err = simulate_file(path, capsys, "--microbatches", "64", "--buffers", "1000")
    assert code == 0, err
    assert "200,000.0 samples/s   (period 20.000 us" in out and "no steady state" not in out


def test_the_format_doc_lists_every_key_the_loader_knows() -> None:
    import re

    from chiplex.targets.schema import SCHEDULE_SCHEMA, List, Table, Tagged

    doc = (Path(__file__).parent.parent / "docs" / "schedule-format.md").read_text()
    documented: set[tuple[str, str]] = set()
    for where, keys in re.findall(r"^\| ([^|]+?) \| ((?:`[a-z_]+`(?:, )?)+) \|", doc, re.M):
        for key in re.findall(r"`([a-z_]+)`", keys):
            documented.add((where.strip("`"), key))
    chips = SCHEDULE_SCHEMA.keys["chips"]
    messages = SCHEDULE_SCHEMA.keys["messages"]
    assert isinstance(chips, List) and isinstance(chips.item, Table)
    assert isinstance(messages, List) and isinstance(messages.item, Table)
    steps = chips.item.keys["steps"]
    assert isinstance(steps, List) and isinstance(steps.item, Tagged)
    known = {("top level", k) for k in SCHEDULE_SCHEMA.keys}
    known |= {("chips[i]", k) for k in chips.item.keys}
    known |= {("messages[j]", k) for k in messages.item.keys}
    for kind, table in steps.item.variants.items():
        known |= {(f"{kind} step", k) for k in table.keys}
    assert documented == known


def test_a_schedule_that_takes_no_time_reports_no_throughput(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(HAND_WRITTEN)
    for chip in data["chips"]:
        chip["steps"] = []
    code, out, err = simulate_file(write(tmp_path, data), capsys)
    assert code == 0, err
    # Not "1,000,000,000,000,000 samples/s (period 0.000 ns)", a number the 1e-15 s floor made up.
    assert "takes no time" in out and "samples/s" not in out


def test_a_huge_micro_batch_count_is_refused_even_for_empty_chips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import chiplex.runtime_sim.simulator as simulator

    data = copy.deepcopy(HAND_WRITTEN)
    for chip in data["chips"]:
        chip["steps"] = []
    path = write(tmp_path, data)
    # Before, no steps meant an estimate of 0 events: 10^8 micro-batches ran for minutes and took
    # gigabytes. A lower limit keeps the test fast either way: 3 chips x 1000 micro-batches > 1000.
    monkeypatch.setattr(simulator, "MAX_EVENTS", 1000)
    code, out, err = simulate_file(path, capsys, "--microbatches", "1000")
    assert code == 1 and out == ""
    assert f"{path}: simulating 1000 micro-batches" in err and "use fewer micro-batches" in err
    assert "message sizes" not in err  # it sends none


def test_whole_numbers_written_as_floats_load_as_the_schema_promises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Some JSON writers emit every number as a float; the schema accepts 65536.0 as a whole number,
    # so the loader must not then fail with "field 'bytes' has the wrong type (float)".
    data = copy.deepcopy(HAND_WRITTEN)
    data["num_chips"] = 3.0
    data["chips"][0]["steps"][1].update(to=1.0, bytes=65536.0, route=[0.0, 1.0], msg=0.0)
    code, out, err = simulate_file(write(tmp_path, data), capsys)
    assert code == 0, err
    assert "200,000.0 samples/s" in out


def test_a_version_written_as_a_string_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(HAND_WRITTEN)
    data["version"] = "1"
    path = write(tmp_path, data)
    code, _, err = simulate_file(path, capsys)
    # Not "schedule version '1' is not supported (expected 1)".
    assert code == 1 and f"{path}: version: expected the number 1, got '1'" in err


def test_a_route_that_loops_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = copy.deepcopy(HAND_WRITTEN)
    data["chips"][0]["steps"][1]["route"] = [0, 1, 0, 1]
    path = write(tmp_path, data)
    code, out, err = simulate_file(path, capsys)
    # Before, it ran and moved msg 0 over link 0->1 twice per micro-batch.
    assert code == 1 and out == ""
    assert "route [0, 1, 0, 1] visits chip 0 twice" in err and "as [0, 1]" in err


def test_a_key_written_twice_is_located_not_silently_overridden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "schedule.json"
    text = json.dumps(HAND_WRITTEN).replace(
        '"duration_s": 2e-05', '"duration_s": 2e-05, "duration_s": 3e-05'
    )
    assert text.count('"duration_s"') == 4
    path.write_text(text)
    code, out, err = simulate_file(path, capsys)
    # Before, the last value (30 us) won silently.
    assert code == 1 and out == ""
    assert f"{path}: chips[1].steps[1].duration_s: written more than once in one object" in err


def test_a_very_slow_schedule_reads_as_a_rate_not_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(HAND_WRITTEN)
    data["chips"][1]["steps"][1]["duration_s"] = 1e8  # 4 samples per 10^8 s
    code, out, err = simulate_file(write(tmp_path, data), capsys, "--microbatches", "2")
    assert code == 0, err
    # Before: "throughput   0.0 samples/s".
    assert "throughput   4e-08 samples/s" in out and "analytic     4e-08 samples/s" in out


def test_more_buffers_than_the_target_has_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    code, out, err = simulate_file(path, capsys, "--buffers", "8")
    assert code == 0 and "throughput" in out
    assert "warning: --buffers 8 is more than the 2 receive buffers per message of tpu-ring4" in err
    code, out, err = simulate_file(path, capsys, "--buffers", "2")
    assert code == 0 and err == ""


def test_a_message_table_must_list_every_message_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(HAND_WRITTEN)
    entry = {"msg": 0, "src": 0, "dst": 1, "bytes": 65536, "route": [0, 1], "tensor": "%a"}
    data["messages"] = [entry, entry]  # msg 0 twice, msg 1 missing
    path = write(tmp_path, data)
    code, out, err = simulate_file(path, capsys)
    assert code == 1 and out == ""
    assert "messages[1]: message 0 is listed again (first at messages[0])" in err
    assert "messages: no entry for message 1, which chips[1].steps[2] (chip 1: send msg 1" in err
