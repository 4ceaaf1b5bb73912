from __future__ import annotations

import re

import pytest

from chiplex.errors import ChiplexError
from chiplex.targets.target import load_target, preset_names, target_from_toml

MINIMAL = """
name = "{name}"
[chip]
matrix_ops = {{ i8 = 1e12 }}
vector_ops = {{ i8 = 1e11 }}
sram_bytes = 1048576
sram_bandwidth = 1e11
[link]
bandwidth = 1e9
latency = 1e-6
[topology]
{topology}
"""


def make(topology: str, name: str = "t"):
    return target_from_toml(MINIMAL.format(name=name, topology=topology))


def test_presets_load() -> None:
    assert {"tpu-ring8", "simba-6x6"} <= set(preset_names())
    ring = load_target("tpu-ring8")
    assert ring.num_chips == 8 and ring.topology == "ring" and len(ring.links) == 16
    mesh = load_target("simba-6x6")
    assert mesh.num_chips == 36 and len(mesh.links) == 2 * (2 * 6 * 5)
    assert mesh.chip.dram_bytes > 0


def test_ring_routes_take_the_shortest_direction() -> None:
    ring = make('kind = "ring"\nnum_chips = 8')
    assert ring.route(0, 3) == (0, 1, 2, 3)
    assert ring.route(0, 6) == (0, 7, 6)
    assert ring.route(6, 1) == (6, 7, 0, 1)
    assert ring.hops(2, 2) == 0
    assert ring.route(0, 4) == (0, 1, 2, 3, 4)  # a tie goes forward


def test_mesh_pipeline_order_is_a_snake_of_physical_neighbours() -> None:
    mesh = make('kind = "mesh"\nshape = [3, 4]')
    for chip in range(mesh.num_chips - 1):
        (r1, c1), (r2, c2) = mesh.positions[chip], mesh.positions[chip + 1]
        assert abs(r1 - r2) + abs(c1 - c2) == 1
        assert mesh.hops(chip, chip + 1) == 1


def test_mesh_routes_x_then_y() -> None:
    mesh = make('kind = "mesh"\nshape = [3, 4]')
    route = mesh.route(0, mesh.positions.index((2, 3)))
    coords = [mesh.positions[c] for c in route]
    assert coords == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]
    links = mesh.route_links(route[0], route[-1])
    assert [(mesh.links[i].src, mesh.links[i].dst) for i in links] == list(
        zip(route, route[1:], strict=False)
    )


def test_torus_wraps_around() -> None:
    torus = make('kind = "torus"\nshape = [4, 4]')
    start, end = torus.positions.index((0, 0)), torus.positions.index((0, 3))
    assert torus.hops(start, end) == 1


def test_explicit_links_use_shortest_paths() -> None:
    t = make('kind = "links"\nnum_chips = 4\nlinks = [[0, 1], [1, 2], [2, 3], [0, 3]]')
    assert t.route(0, 3) == (0, 3)
    assert t.route(1, 3) in ((1, 2, 3), (1, 0, 3))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[chip]\n", "bad.toml: missing sections [link], [topology]"),
        (
            MINIMAL.format(name="x", topology='kind = "hypercube"'),
            "topology.kind: expected one of ring",
        ),
        (
            MINIMAL.format(name="x", topology='kind = "ring"\nnum_chips = 4').replace(
                "1048576", "-5"
            ),
            "sram_bytes",
        ),
        ("not toml [", "invalid TOML"),
        # Located like IR errors: tomllib puts the position at the end of its message.
        ('name = "x"\n[chip\n', "bad.toml:2:6: invalid TOML: Expected ']' at the end of a table"),
        # A file cut short (tomllib says "at end of document") is located at its end.
        ('name = "x"\nshape = [2, 3', "bad.toml:2:14: invalid TOML: Unclosed array"),
        ('name = "x"\nshape = [2, 3\n', "bad.toml:3:1: invalid TOML: Unclosed array"),
        (
            MINIMAL.format(name="x", topology='kind = "ring"\nnum_chips = 4').replace(
                "[link]", "[links]"
            ),
            "bad.toml: missing section [link]; found [links] (a typo of [link]?)",
        ),
        ("[chips]\n[topology]\n", "missing sections [chip], [link]; found [chips] (a typo"),
        (
            MINIMAL.format(name="x", topology='kind = "ring"\nnum_chips = 2')
            + "[rules]\ncolocated = [[]]\n",
            "bad.toml: rules.colocated[0]: expected at least 1 item like",
        ),
        # An explicit link list is checked against num_chips and for a route between all chips.
        (
            MINIMAL.format(
                name="x", topology='kind = "links"\nnum_chips = 4\nlinks = [[0, 1], [1, 5]]'
            ),
            "bad.toml: topology.links[1]: [1, 5] names chip 5, but num_chips = 4 (chips 0..3)",
        ),
        (
            MINIMAL.format(name="x", topology='kind = "links"\nnum_chips = 3\nlinks = [[1, 1]]'),
            "bad.toml: topology.links[0]: [1, 1] joins chip 1 to itself",
        ),
        (
            MINIMAL.format(
                name="x", topology='kind = "links"\nnum_chips = 4\nlinks = [[0, 1], [2, 3]]'
            ),
            "bad.toml: topology.links: the chips fall apart into 2 groups with no link between "
            "them (0, 1; 2, 3)",
        ),
    ],
)
def test_bad_target_files_give_clear_errors(text: str, message: str) -> None:
    with pytest.raises(ChiplexError, match=re.escape(message)):
        target_from_toml(text, "bad.toml")


def test_rates_take_dtype_aliases_and_refuse_unknown_dtypes() -> None:
    # The cost model looks rates up by the IR's names: `int8` written by a user must rate i8 ops,
    # not be ignored so that i8 falls back to the slowest rate listed.
    ring = 'kind = "ring"\nnum_chips = 2'
    aliased = MINIMAL.format(name="x", topology=ring).replace(
        "{ i8 = 1e12 }", "{ int8 = 4e12, BFloat16 = 1e12 }"
    )
    chip = target_from_toml(aliased, "a.toml").chip
    assert chip.matrix_ops == {"i8": 4e12, "bf16": 1e12}
    assert chip.peak("matrix", "i8") == 4e12
    unknown = aliased.replace("int8", "fp8")
    with pytest.raises(ChiplexError, match=r"a\.toml: chip\.matrix_ops\.fp8: unknown element type"):
        target_from_toml(unknown, "a.toml")
    twice = aliased.replace("BFloat16", "i8")
    with pytest.raises(ChiplexError, match=r"'matrix_ops' gives i8 twice \(int8 and i8\)"):
        target_from_toml(twice, "a.toml")


def test_unknown_target_names_the_presets() -> None:
    with pytest.raises(ChiplexError, match="tpu-ring8"):
        load_target("no-such-target")
