"""`tensor-parallel`: a feed-forward block split by hidden features (Megatron-style) computes the
same results with the same shapes, parameter bytes and matrix flops (plus exactly the partial
sums' adds), holds no whole weight matrix in one op, and is what lets `chiplex compile` place a
model whose whole matrices cannot be packed (then `chiplex check` passes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn as tnn

from chiplex.cli import main
from chiplex.compile import compile_module, module_text, run_pipeline
from chiplex.errors import ChiplexError
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import parse_module
from chiplex.ir.torch_import import import_with_constants, module_stats
from chiplex.ir.types import tensor_bytes
from chiplex.passes import default_pipeline
from chiplex.passes.split_rows import row_blocks
from chiplex.passes.tensor_parallel import feature_block
from chiplex.targets.solver import InfeasibleError
from chiplex.testing import assert_pipeline_preserves_semantics


class Stack(tnn.Module):
    """`layers` pre-activation residual feed-forward blocks (ViT's MLP without the norm); with
    `shared`, every layer reuses the first one's weights (ALBERT); with `tanh`, GPT-2's tanh GELU,
    which reads its input four times and scalar constants."""

    def __init__(
        self, d: int = 32, f: int = 512, layers: int = 2, shared: bool = False, tanh: bool = False
    ) -> None:
        super().__init__()
        count = 1 if shared else layers
        self.layers, self.tanh = layers, tanh
        self.up = tnn.ModuleList(tnn.Linear(d, f) for _ in range(count))
        self.down = tnn.ModuleList(tnn.Linear(f, d) for _ in range(count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.layers):
            up, down = self.up[i % len(self.up)], self.down[i % len(self.down)]
            h = up(x)
            if self.tanh:
                h = 0.5 * h * (1.0 + torch.tanh(0.7978845608 * (h + 0.044715 * torch.pow(h, 3.0))))
            else:
                h = torch.nn.functional.gelu(h)
            x = x + down(h)
        return x


def _module(tokens: int = 4, **kwargs: object):  # type: ignore[no-untyped-def]
    model = Stack(**kwargs)  # type: ignore[arg-type]
    return import_with_constants(model, (torch.randn(1, tokens, 32),), weight_dtype="i8")[0]


def _matrices(module) -> list[int]:  # type: ignore[no-untyped-def]
    """Bytes of every 2-D parameter, largest first."""
    return sorted(
        (
            tensor_bytes(op.result.type)
            for op in module.walk()
            if op.name == "nn.param" and len(op.result.type.get_shape()) == 2
        ),
        reverse=True,
    )


@pytest.mark.parametrize("chunks", [2, 3])
def test_same_results_shapes_parameter_bytes_and_exactly_the_added_sums(chunks: int) -> None:
    module = _module()
    pipeline = f"tensor-parallel{{chunks={chunks}}}"
    assert_pipeline_preserves_semantics(module, pipeline, rtol=1e-5)
    split = run_pipeline(module.clone(), pipeline)[0]
    before, after = module_stats(module), module_stats(split)
    assert (after.param_bytes, after.param_elements) == (before.param_bytes, before.param_elements)
    assert after.matrix_flops == before.matrix_flops
    # The only new flops: (chunks - 1) adds of the [1, 4, 32] partial products, per block.
    assert after.flops - before.flops == 2 * (chunks - 1) * 4 * 32
    attributes = split.attributes
    assert attributes["chiplex.tensor_parallel"].value.data == 2  # type: ignore[attr-defined]
    assert attributes["chiplex.tensor_parallel_add_flops"].value.data == (  # type: ignore[attr-defined]
        after.flops - before.flops
    )
    functions = [next(iter(m.ops)) for m in (module, split)]
    assert functions[0].function_type == functions[1].function_type  # type: ignore[attr-defined]
    g0, g1 = graph_from_module(module), graph_from_module(split)
    assert g1.total_weight_bytes == g0.total_weight_bytes
    assert g1.flops.sum() - g0.flops.sum() == after.flops - before.flops
    # No op reads a whole matrix, and the GELU's working set shrinks by the chunks.
    assert _matrices(split)[0] == -(-512 // chunks) * 32  # 32 x 512 matrices
    assert g1.working_set_bytes.max() < g0.working_set_bytes.max()
    text = module_text(split)
    assert 'shard_of = "up.0.weight", shard_axis = 1' in text  # W1 by its output columns
    assert 'shard_of = "down.0.weight", shard_axis = 0' in text  # W2 by its input rows
    assert 'shard_of = "up.0.bias", shard_axis = 0' in text  # the bias with W1's columns
    assert "down.0.matmul.sum1" in text


def test_composes_with_split_rows_and_the_tanh_gelu_region() -> None:
    module = _module(tanh=True)
    pipeline = "tensor-parallel{chunks=2},split-rows{chunks=2}"
    assert_pipeline_preserves_semantics(module, pipeline, rtol=1e-5)
    split = run_pipeline(module.clone(), pipeline)[0]
    text = module_text(split)
    assert "chiplex.tensor_parallel = 2" in text and "chiplex.split_rows = 4" in text
    assert module_stats(split).matrix_flops == module_stats(module).matrix_flops


def test_shared_weights_are_split_once_for_every_reader() -> None:
    module = _module(shared=True, layers=3)
    assert_pipeline_preserves_semantics(module, "tensor-parallel{chunks=2}", rtol=1e-5)
    split = run_pipeline(module.clone(), "tensor-parallel{chunks=2}")[0]
    assert module_stats(split).param_bytes == module_stats(module).param_bytes
    names = [op.param_name.data for op in split.walk() if op.name == "nn.param"]  # type: ignore[attr-defined]
    assert names.count("up.0.weight.shard0") == 1 and "up.0.weight" not in names


def test_a_weight_also_read_elsewhere_leaves_its_block_whole() -> None:
    class Tied(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up, self.down = tnn.Linear(32, 512), tnn.Linear(512, 32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.down(torch.relu(self.up(x)))
            return h + x @ self.up.weight.t()[:, :32]  # W1 read by a slice too

    module = import_with_constants(Tied(), (torch.randn(1, 4, 32),), weight_dtype="i8")[0]
    (block,) = row_blocks(next(iter(module.ops)))
    assert feature_block(block) is not None  # a feed-forward block, but W1 has another reader
    text = module_text(module)
    assert module_text(run_pipeline(module, "tensor-parallel")[0]) == text


def test_options() -> None:
    module = _module()
    split = run_pipeline(module.clone(), "tensor-parallel{chunks=2 max_bytes=4096}")[0]
    assert _matrices(split)[0] == 4096  # 16 KiB matrices in 4 chunks, beyond chunks=2
    text = module_text(module)
    assert module_text(run_pipeline(module, "tensor-parallel{min_bytes=16384}")[0]) == text
    for bad, message in (
        ("chunks=1", "chunks must be >= 2"),
        ("max_bytes=0", "max_bytes must be > 0"),
        ("min_bytes=-1", r"tensor-parallel\{min_bytes\}: expected a whole number >= 0"),
    ):
        with pytest.raises(ChiplexError, match=message):
            run_pipeline(_module(), f"tensor-parallel{{{bad}}}")


def _three_chip_target(path: Path, sram: int) -> str:
    path.write_text(
        f'name = "three"\n[chip]\nmatrix_ops = {{ i8 = 1.0e12, bf16 = 1.0e12, f32 = 1.0e12 }}\n'
        f"vector_ops = {{ i8 = 1.0e12, bf16 = 1.0e12, f32 = 1.0e12 }}\nsram_bytes = {sram}\n"
        "sram_bandwidth = 1.0e12\n[link]\nbandwidth = 1.0e9\nlatency = 1.0e-9\n"
        '[topology]\nkind = "ring"\nnum_chips = 3\n'
    )
    return str(path)


def test_compile_falls_back_to_tensor_parallel_when_whole_matrices_do_not_pack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four 16 KiB matrices on 3 chips of 36 KiB: whole, two must share a chip (32 KiB plus
    buffers and working sets: proved infeasible even with the rows split); in 8 KiB shards they
    pack 3 + 3 + 2."""
    text = module_text(_module())
    target = _three_chip_target(tmp_path / "three.toml", 36 * 1024)
    with pytest.raises(InfeasibleError):
        compile_module(
            parse_module(text), target, pipeline=default_pipeline(target, split_rows=4608)
        )
    result = compile_module(parse_module(text), target)
    assert "chiplex.tensor_parallel = 2" in result.placed_ir
    placed = tmp_path / "placed.mlir"
    placed.write_text(result.placed_ir)
    assert main(["check", str(placed), "--target", target]) == 0
    source = tmp_path / "stack.mlir"
    source.write_text(text)
    out = tmp_path / "out"
    assert (
        main(["compile", str(source), "--target", target, "-o", str(out), "--check-semantics"]) == 0
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert "tensor-parallel: 2 feed-forward blocks split by hidden features" in printed
    # Progress on stderr: each retry, with the reason the previous attempt failed.
    assert "note: no placement with whole blocks (no legal placement exists: " in captured.err
    assert (
        "note: no placement with the rows split either (no legal placement exists: " in captured.err
    )
    assert "retrying with the feed-forward weight matrices also split by hidden features" in (
        captured.err
    )
    # Shards of at most 1/32 of a chip (1152 B): 15 chunks of each 16 KiB matrix, 14 adds of
    # [1, 4, 32] per block.
    assert f"+ {2 * 14 * 4 * 32:,} flops for the partial sums" in printed
    assert "semantics kept" in printed


def test_no_placement_even_split_gives_every_attempts_reason(tmp_path: Path) -> None:
    """Chips of 22,272 B hold the 66,624 B of weights in all, but not with any working set: each
    attempt is ruled out (the working set shrinks from 8 KiB to 4 KiB to 768 B), and the error
    gives the three reasons."""
    target = _three_chip_target(tmp_path / "three.toml", 22272)
    with pytest.raises(InfeasibleError) as raised:
        compile_module(_module(), target)
    message = str(raised.value)
    assert "total weights 65.06 KiB plus the largest working set 8.00 KiB" in message
    assert (
        "blocks split by rows too: no legal placement exists: total weights 65.06 KiB plus "
        in message
    )
    assert (
        "weight matrices also split by hidden features (tensor-parallel{max_bytes=696}): no legal "
        "placement exists: total weights 65.06 KiB plus the largest working set 768 B" in message
    )


def test_weights_over_the_module_say_what_would_fit(tmp_path: Path) -> None:
    target = _three_chip_target(tmp_path / "three.toml", 16 * 1024)
    with pytest.raises(InfeasibleError) as raised:
        compile_module(_module(), target)
    message = str(raised.value)
    assert "total weights 65.06 KiB > 3 chips x 16.00 KiB" in message
    assert (
        "what would fit: the weights alone (65.06 KiB in 8 parameters and constants, none larger "
        "than one chip) "
        "need at least 5 chips of 16.00 KiB, or 3 chips of at least 21.69 KiB" in message
    )
    assert "Largest parameters: 'up.0.weight' (16.00 KiB)" in message
    assert "split by hidden features" not in message  # no split was tried: none could help


def test_a_softmax_between_the_products_mixes_features_and_is_left_whole() -> None:
    class SoftmaxMix(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up, self.down = tnn.Linear(32, 512), tnn.Linear(512, 32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.down(torch.softmax(self.up(x), dim=-1))

    module = import_with_constants(SoftmaxMix(), (torch.randn(1, 4, 32),), weight_dtype="i8")[0]
    (block,) = row_blocks(next(iter(module.ops)))  # split-rows splits it by rows
    assert feature_block(block) is None  # but the softmax reads every feature
    text = module_text(module)
    assert module_text(run_pipeline(module, "tensor-parallel")[0]) == text


def test_parameters_named_by_position_get_valid_shard_names() -> None:
    """`nn.Sequential` names its parameters `0.weight`, ...: not a valid SSA name to build on."""
    model = tnn.Sequential(tnn.Linear(8, 64), tnn.GELU(), tnn.Linear(64, 8))
    module = import_with_constants(model, (torch.randn(1, 4, 8),))[0]
    split = run_pipeline(module, "tensor-parallel{chunks=2}")[0]
    text = module_text(split)
    assert '"0.weight.shard0"' in text and "%0.weight" not in text
    assert module_text(parse_module(text)) == text
