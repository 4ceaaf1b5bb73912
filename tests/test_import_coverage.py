"""Importer coverage added for real models: in-place code (functionalised by torch.export),
comparisons, cumsum, gather / advanced indexing, constant padding, writes into slices, 1-D
convolution, and non-tensor outputs. One small local module per op family; each is checked
against the module's own output and for its exact flops."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from test_torch_import import check_equivalent, ops_named, run_ir
from torch import nn as tnn
from xdsl.dialects.builtin import ModuleOp, TensorType

from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.graph import graph_from_module
from chiplex.ir.torch_import import (
    ImportNote,
    import_module,
    import_with_constants,
    module_stats,
)
from chiplex.ir.types import tensor_bytes


class InPlaceResidual(tnn.Module):
    """A classic CNN block written with in-place ops: ReLU(inplace=True), `+=`, `add_`, and
    writes into slices of a fresh tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = tnn.Conv2d(4, 4, 3, padding=1)
        self.bn = tnn.BatchNorm2d(4)
        self.relu = tnn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn(self.conv(x)))
        out += identity
        out.add_(1.0)
        out.mul_(0.5)
        y = torch.zeros(1, 4, 8, 8)
        y[:, :2] = out[:, :2]
        y[:, 3] = out[:, 1]
        return self.relu(out) * y


def test_in_place_code_is_functionalised_and_computes_the_same() -> None:
    module = check_equivalent(InPlaceResidual(), (torch.randn(1, 4, 8, 8),))
    kinds = {op.name for op in module.walk()}
    assert {"nn.relu", "nn.insert_slice", "nn.conv2d"} <= kinds
    # The two slice writes are two inserts into the zero tensor, which is one splat constant.
    assert len(ops_named(module, "nn.insert_slice")) == 2


def test_in_place_relu_in_sequential_imports() -> None:
    model = tnn.Sequential(tnn.Linear(8, 8), tnn.ReLU(inplace=True), tnn.Linear(8, 2))
    module = check_equivalent(model, (torch.randn(3, 8),))
    assert len(ops_named(module, "nn.relu")) == 1


class PositionIds(tnn.Module):
    """RoBERTa's position ids: `ne.Scalar`, `cumsum`, integer arithmetic, then an embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = tnn.Embedding(40, 8, padding_idx=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids.ne(1).int()
        positions = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + 1
        keep = (ids > 2) & (ids <= 30)
        return self.emb(positions) * keep.unsqueeze(-1)


def test_comparisons_and_cumsum() -> None:
    ids = torch.tensor([[3, 4, 1, 1, 9], [5, 1, 7, 1, 31]])
    module = check_equivalent(PositionIds(), (ids,))
    predicates = sorted(op.predicate.data for op in ops_named(module, "nn.compare"))  # type: ignore[attr-defined]
    assert predicates == ["gt", "le", "ne"]
    (cumsum,) = ops_named(module, "nn.cumsum")
    assert cumsum.flops() == ids.numel()  # type: ignore[attr-defined]
    for op in ops_named(module, "nn.compare"):
        assert op.flops() == ids.numel()  # type: ignore[attr-defined]


class Gathers(tnn.Module):
    """`torch.gather` along a dim, and advanced indexing `x[rows, cols]` (CLIP's text pooling)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = tnn.Parameter(torch.randn(6, 5))

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        picked = x[torch.arange(x.shape[0]), idx[:, 0]]
        return torch.gather(x, 1, idx) + picked.unsqueeze(1) + self.table[idx[:, 1]][:, :3]


def test_gather_and_index_tensor() -> None:
    x, idx = torch.randn(2, 5), torch.tensor([[0, 3, 4], [2, 2, 1]])
    module = check_equivalent(Gathers(), (x, idx))
    assert len(ops_named(module, "nn.gather_elements")) == 1
    assert len(ops_named(module, "nn.gather")) == 2
    for op in ops_named(module, "nn.gather_elements") + ops_named(module, "nn.gather"):
        assert op.flops() == 0  # type: ignore[attr-defined]


class Conv1dStack(tnn.Module):
    """A speech-encoder front end: constant padding, strided and grouped 1-D convolutions,
    a crop by negative padding (wav2vec2's positional convolution drops its last frame)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = tnn.Conv1d(4, 6, 3, stride=2, padding=1)
        self.grouped = tnn.Conv1d(6, 6, 4, padding=2, groups=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (2, 1), value=0.5)
        x = self.grouped(F.gelu(self.conv(x)))
        return F.pad(x, (0, -1))


def test_constant_padding_and_conv1d() -> None:
    x = torch.randn(2, 4, 9)
    module = check_equivalent(Conv1dStack(), (x,))
    (pad,) = ops_named(module, "nn.pad")
    assert pad.flops() == 0  # type: ignore[attr-defined]
    convs = ops_named(module, "nn.conv2d")
    assert len(convs) == 2
    # Exact flops: 2 * N * O * L_out * (C / groups) * K per convolution.
    assert convs[0].flops() == 2 * 2 * 6 * 6 * 4 * 3  # type: ignore[attr-defined]
    assert convs[1].flops() == 2 * 2 * 6 * 7 * 2 * 4  # type: ignore[attr-defined]
    # Weights are stored once, in the [O, I, 1, K] layout the 2-D op reads.
    stats = module_stats(import_module(Conv1dStack(), (x,)))
    assert stats.param_elements == sum(p.numel() for p in Conv1dStack().parameters())


class StridedWrite(tnn.Module):
    """A strided write into a slice (`slice_scatter` with a step) and a cache-like output."""

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cache = cache.clone()
        cache[:, 1::2] = x * 2
        return cache, cache[:, :3].sum(-1)


def test_strided_slice_scatter() -> None:
    module = check_equivalent(StridedWrite(), (torch.randn(2, 3), torch.randn(2, 6)))
    (insert,) = ops_named(module, "nn.insert_slice")
    assert insert.stride_values() == (1, 2)  # type: ignore[attr-defined]


class WithCacheObject(tnn.Module):
    """Returns a tensor and non-tensor values, as a decoder returning its cache flags does."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = tnn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, None]:
        return self.proj(x), 7, None


def test_non_tensor_outputs_are_dropped_with_a_note() -> None:
    with pytest.warns(ImportNote) as notes:
        module = import_module(WithCacheObject(), (torch.randn(2, 4),))
    assert [str(note.message).split(": ", 1)[1] for note in notes] == [
        "output #1 is not a tensor (int): dropped",
        "output #2 is not a tensor (NoneType): dropped",
    ]
    graph = graph_from_module(module)
    function = next(iter(module.ops))
    assert len(function.function_type.outputs.data) == 1  # type: ignore[attr-defined]
    assert graph.flops.sum() == 2 * 2 * 4 * 4 + 2 * 4


class KeyValueCache:
    """An object torch.export cannot flatten, as a library's key/value cache class."""

    def __init__(self, keys: torch.Tensor) -> None:
        self.keys = keys


class ReturnsACache(tnn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = tnn.Linear(4, 4)
        self.register_buffer("scale", torch.tensor([1.0, 2.0, 3.0, 4.0]))

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        y = self.proj(x) * self.scale
        return {"last_hidden_state": y, "past_key_values": KeyValueCache(y)}


def test_an_output_object_export_cannot_flatten_is_dropped_with_a_note() -> None:
    with pytest.warns(ImportNote, match=r"output #1 is not a tensor \(KeyValueCache\): dropped"):
        module = check_equivalent_first(ReturnsACache(), (torch.randn(2, 4),))
    # Names are the user's module's own, not the wrapper's.
    names = {op.param_name.data for op in ops_named(module, "nn.param")}  # type: ignore[attr-defined]
    assert names == {"proj.weight", "proj.bias", "scale"}
    assert "%proj.matmul" in graph_from_module(module).op_names


def check_equivalent_first(model: tnn.Module, inputs: tuple[torch.Tensor, ...]) -> ModuleOp:
    """The IR's only result equals the module's first output."""
    module, consts = import_with_constants(model, inputs, weight_dtype=None, activation_dtype=None)
    with torch.no_grad():
        expected = model.eval()(*inputs)["last_hidden_state"]
        (got,) = run_ir(module, model, inputs, consts)
    torch.testing.assert_close(got.float(), expected.float(), atol=1e-4, rtol=1e-4)
    return module


@pytest.mark.parametrize("model", [InPlaceResidual, PositionIds, Conv1dStack])
def test_bytes_of_new_ops_are_their_tensors(model: type[tnn.Module]) -> None:
    """The graph view counts each new op's operands and result like any other op's."""
    inputs = {
        InPlaceResidual: (torch.randn(1, 4, 8, 8),),
        PositionIds: (torch.tensor([[3, 4, 1, 1, 9]]),),
        Conv1dStack: (torch.randn(2, 4, 9),),
    }[model]
    graph = graph_from_module(import_module(model(), inputs))
    for i, op in enumerate(graph.ops):
        result = op.results[0].type
        nbytes = math.prod(result.get_shape()) * _bytes(result.get_element_type())  # type: ignore[attr-defined]
        assert graph.output_bytes[i] == nbytes


def _bytes(elem: object) -> int:
    return tensor_bytes(TensorType(elem, [1]))  # type: ignore[arg-type]


def test_new_ops_are_in_the_dialect() -> None:
    names = {op.name for op in nn.NN_OPS}
    assert {
        "nn.compare",
        "nn.cumsum",
        "nn.gather_elements",
        "nn.pad",
        "nn.insert_slice",
        "nn.embedding_shard",
    } <= names


def test_a_pooling_window_larger_than_the_input_is_the_global_mean() -> None:
    """EfficientNet's head: `AvgPool2d(hidden_dim, ceil_mode=True)` over a 7x7 map."""
    model = tnn.Sequential(tnn.Conv2d(3, 8, 3), tnn.AvgPool2d(64, ceil_mode=True))
    module = check_equivalent(model, (torch.randn(1, 3, 9, 9),))
    assert len(ops_named(module, "nn.global_avg_pool2d")) == 1


def test_adaptive_max_pooling_is_max_pooling_over_even_windows() -> None:
    """A keyword spotter's head (`AdaptiveMaxPool1d(1)`) and a 2D pool to 2x2."""
    model = tnn.Sequential(tnn.Conv1d(1, 4, 9, stride=4), tnn.AdaptiveMaxPool1d(1), tnn.Flatten())
    module = check_equivalent(model, (torch.randn(2, 1, 64),))
    assert len(ops_named(module, "nn.max_pool2d")) == 1
    grid = tnn.Sequential(tnn.Conv2d(3, 4, 3, padding=1), tnn.AdaptiveMaxPool2d((2, 2)))
    check_equivalent(grid, (torch.randn(1, 3, 8, 6),))
    with pytest.raises(ChiplexError, match="adaptive pooling of 7x7 to 2x2"):
        import_module(tnn.AdaptiveMaxPool2d(2), (torch.randn(1, 3, 7, 7),))


class Decoder(tnn.Module):
    """A U-Net-like decoder step and a robust head: nearest upsampling by 2, |x|, and minima."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = tnn.Conv2d(3, 4, 3, padding=1)
        self.up = tnn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(F.max_pool2d(self.conv(x), 2)).abs()
        low = torch.minimum(y, y.amin(dim=(2, 3), keepdim=True) + 0.5)
        return torch.cat([low.flatten(1), y.min(-1).values.flatten(1), y.min().reshape(1, 1)], 1)


def test_nearest_upsampling_abs_and_minima_compute_what_the_module_computes() -> None:
    module = check_equivalent(Decoder(), (torch.randn(1, 3, 8, 6),))
    assert not ops_named(module, "nn.compare")  # |x| and the minima need no masks
    with pytest.raises(ChiplexError, match="nearest upsampling of 3x3 to 4x4"):
        import_module(tnn.Upsample(size=(4, 4)), (torch.randn(1, 2, 3, 3),))


class Recurrent(tnn.Module):
    """A sequence classifier: an LSTM and a GRU unrolled by export over 5 steps."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = tnn.LSTM(8, 16, batch_first=True)
        self.gru = tnn.GRU(16, 8, batch_first=True)
        self.head = tnn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(x)
        out, _ = self.gru(hidden)
        return self.head(out[:, -1])


def test_recurrent_layers_import_without_torchs_internal_warning() -> None:
    # torch's LSTM/GRU re-assign their flat weights while exported and warn about it: the user
    # cannot act on that, and the weights are captured (the results match).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_equivalent(Recurrent(), (torch.randn(2, 5, 8),))
    assert not [w for w in caught if "_flat_weights" in str(w.message)]


class SpeechFrontEnd(tnn.Module):
    """wav2vec2's feature encoder and positional convolution: a group norm with one group per
    channel, and a weight-normalised grouped convolution (`_weight_norm`, a vector 2-norm)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = tnn.Conv1d(1, 8, 10, stride=5, bias=False)
        self.norm = tnn.GroupNorm(8, 8)
        self.norm2 = tnn.GroupNorm(2, 8)
        self.pos = tnn.utils.parametrizations.weight_norm(
            tnn.Conv1d(8, 8, 4, padding=2, groups=2), name="weight", dim=2
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.norm2(F.gelu(self.norm(self.conv(audio.unsqueeze(1)))))
        return x + self.pos(x)[:, :, :-1]


def test_group_norm_and_weight_norm() -> None:
    model = SpeechFrontEnd()
    module = check_equivalent(model, (torch.randn(2, 64),))
    assert len(ops_named(module, "nn.layer_norm")) == 2
    imported, consts = import_with_constants(model, (torch.randn(2, 64),))
    stats = module_stats(imported)
    # Weight normalisation reads parameters only: folded at import into the weight the conv
    # really uses (stored in the weight dtype, its data returned with the constants), so the IR
    # has that weight instead of its magnitude g and direction v.
    (folded,) = [op for op in ops_named(imported, "nn.param") if "folded_from" in op.attributes]
    conv = model.pos.parametrizations.weight
    assert (
        folded.attributes["folded_from"].data
        == "pos.parametrizations.weight.original1,pos.parametrizations.weight.original0"
    )  # type: ignore[attr-defined]
    assert str(folded.results[0].type) == "tensor<8x4x1x4xi8>"
    torch.testing.assert_close(
        consts[folded.param_name.data].reshape(8, 4, 4),  # type: ignore[attr-defined]
        torch._weight_norm(conv.original1, conv.original0, 2).detach(),
    )
    assert not ops_named(imported, "nn.reduce_sum")  # no norm computed per input
    torch_count = sum(p.numel() for p in model.parameters())
    assert stats.param_elements == torch_count - conv.original0.numel()


def test_a_mask_filled_with_the_smallest_f32_prints_and_parses_back() -> None:
    """DeBERTa fills masks with `torch.finfo(float32).min`: its shortest decimal rounds past the
    largest f32 on the way, which must not stop the printer."""
    from xdsl.dialects.builtin import TensorType, f32

    from chiplex.compile import module_text
    from chiplex.ir.parse import parse_module

    smallest = float(torch.finfo(torch.float32).min)
    text = module_text(ModuleOp([nn.ConstantOp(smallest, TensorType(f32, []))]))
    assert "-3.4028235e+38" in text
    assert module_text(parse_module(text)) == text


class Activations(tnn.Module):
    """The activations of many hand-written models: leaky ReLU (both sides of slope 1), ELU, SELU,
    CELU, softplus, mish and logsigmoid (log1p), and the base-2 / base-10 logs and powers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = tnn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x) * 3
        positive = x.abs() + 1
        return torch.cat(
            [
                F.leaky_relu(x, 0.1),
                F.leaky_relu(x, 1.5),
                F.elu(x, 0.7),
                F.selu(x),
                F.celu(x, 0.5),
                F.softplus(x),
                F.softplus(x, 2.0, 5.0),
                F.mish(x),
                F.logsigmoid(x),
                torch.expm1(x),
                torch.log2(positive),
                torch.log10(positive),
                torch.exp2(x),
            ],
            -1,
        )


def test_leaky_relu_elu_log1p_expm1_and_other_bases_compute_what_the_module_computes() -> None:
    check_equivalent(Activations(), (torch.randn(4, 8),))
    # Leaky ReLU and the ELUs need no masks: max / min and exp(min(x, 0)).
    module = check_equivalent(tnn.Sequential(tnn.LeakyReLU(0.2), tnn.ELU()), (torch.randn(4, 8),))
    assert not ops_named(module, "nn.compare")
    # CELU by its own rule: torch's decomposition selects between x and alpha * (exp(x / alpha) - 1)
    # with a mask, and the unused branch (1e17 at x = 20) rounded x away.
    module = check_equivalent(tnn.CELU(0.5), (torch.tensor([[6.1044921875, 20.0, -1.0, 0.0]]),))
    assert not ops_named(module, "nn.compare")


class BilinearDecoder(tnn.Module):
    """A U-Net / segmentation head's upsampling: bilinear by 2 (align_corners False and True),
    and to a size that is no whole factor of the input (Segformer, DeepLab)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        corners = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        resized = F.interpolate(x, size=(10, 7), mode="bilinear", align_corners=False)
        return torch.cat([(up + corners).flatten(1), resized.flatten(1)], 1)


def test_bilinear_upsampling_computes_what_the_module_computes() -> None:
    module = check_equivalent(BilinearDecoder(), (torch.randn(1, 3, 5, 4),))
    assert ops_named(module, "nn.gather")  # torch's decomposition: constant indices, lerp


class TransposedUpsampling(tnn.Module):
    """U-Net's learned upsampling: transposed convolutions whose stride equals the kernel (2-D
    square and oblong, with and without bias, and 1-D)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = tnn.ConvTranspose2d(4, 3, 2, stride=2)
        self.oblong = tnn.ConvTranspose2d(3, 2, (3, 2), stride=(3, 2), bias=False)
        self.up1d = tnn.ConvTranspose1d(4, 5, 4, stride=4)

    def forward(self, x: torch.Tensor, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.oblong(torch.relu(self.up(x))), self.up1d(seq)


def test_transposed_convolution_with_stride_equal_to_kernel_is_a_pixel_shuffle() -> None:
    model = TransposedUpsampling()
    module = check_equivalent(model, (torch.randn(1, 4, 5, 6), torch.randn(2, 4, 7)))
    convs = ops_named(module, "nn.conv2d")
    assert [str(op.results[0].type) for op in convs] == [
        "tensor<1x12x5x6xf32>",
        "tensor<1x12x10x12xf32>",
        "tensor<2x20x1x7xf32>",
    ]
    with pytest.raises(ChiplexError, match=r"kernel \[4, 4\], stride \[2, 2\], padding \[1, 1\]"):
        import_module(tnn.ConvTranspose2d(4, 2, 4, stride=2, padding=1), (torch.randn(1, 4, 5, 6),))


class SharedKeyValueAttention(tnn.Module):
    """Falcon's multi-query attention (one key/value head broadcast to all query heads) and
    grouped-query attention (`enable_gqa`: 2 key/value heads for 8 query heads)."""

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        grouped_k: torch.Tensor,
        grouped_v: torch.Tensor,
    ) -> torch.Tensor:
        multi_query = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        grouped = F.scaled_dot_product_attention(q, grouped_k, grouped_v, enable_gqa=True)
        return multi_query + grouped


def test_multi_query_and_grouped_query_attention_compute_what_the_module_computes() -> None:
    shapes = [(2, 8, 5, 4), (2, 1, 5, 4), (2, 1, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4)]
    module = check_equivalent(SharedKeyValueAttention(), tuple(torch.randn(s) for s in shapes))
    assert {str(op.results[0].type) for op in ops_named(module, "nn.batch_matmul")} == {
        "tensor<2x8x5x5xf32>",
        "tensor<2x8x5x4xf32>",
    }


class BorderPadding(tnn.Module):
    """CycleGAN / pix2pix generators pad with reflections (`ReflectionPad2d`); replication and
    circular padding on 2-D maps, reflection on a sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = tnn.Sequential(tnn.ReflectionPad2d(1), tnn.Conv2d(3, 4, 3))

    def forward(self, x: torch.Tensor, seq: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (
            self.conv(x),
            F.pad(x, (3, 2, 1, 2), mode="reflect"),
            F.pad(x, (2, 1, 0, 3), mode="replicate"),
            F.pad(x, (1, 2, 2, 1), mode="circular"),
            F.pad(seq, (2, 3), mode="reflect"),
        )


def test_reflection_replication_and_circular_padding_are_slices_of_the_border() -> None:
    module = check_equivalent(BorderPadding(), (torch.randn(1, 3, 6, 5), torch.randn(2, 3, 7)))
    assert not ops_named(module, "nn.pad")


class MaskedPositionBias(tnn.Module):
    """T5's decoder keeps its position bias where a causal mask allows and fills `finfo.min`
    elsewhere: the kept values must survive next to the huge fill."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = tnn.Embedding(8, 2)
        self.register_buffer("causal", torch.ones(6, 6, dtype=torch.bool).tril())

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        bias = self.bias(torch.arange(6)).t().unsqueeze(-1) + scores  # [heads, 6, 6]
        masked = torch.where(self.causal, bias, torch.finfo(torch.float32).min)
        return masked.softmax(-1)


def test_a_where_that_fills_the_smallest_float_keeps_the_chosen_values_exactly() -> None:
    check_equivalent(MaskedPositionBias(), (torch.randn(2, 6, 6),))


class Tiled(tnn.Module):
    """DETR repeats its object queries over the batch (`query.unsqueeze(0).repeat(n, 1, 1)`);
    `tile` and a repeat that adds leading dims are the same op."""

    def __init__(self) -> None:
        super().__init__()
        self.queries = tnn.Embedding(5, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        queries = self.queries.weight.unsqueeze(0).repeat(x.shape[0], 1, 1) + x
        return queries, x.repeat(2, 1, 3), x.tile(2, 1, 1, 1)


def test_repeat_and_tile_compute_what_the_module_computes() -> None:
    check_equivalent(Tiled(), (torch.randn(3, 5, 4),))


class StyleTransferBlock(tnn.Module):
    """CycleGAN's generator stem: reflection padding, convolution, instance norm (affine and
    not), and instance norm of a sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tnn.Sequential(
            tnn.ReflectionPad2d(3),
            tnn.Conv2d(3, 8, 7),
            tnn.InstanceNorm2d(8, affine=True),
            tnn.ReLU(True),
            tnn.Conv2d(8, 8, 3, padding=1),
            tnn.InstanceNorm2d(8),
        )
        self.seq = tnn.InstanceNorm1d(4, affine=True)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x), self.seq(y)


def test_instance_norm_is_group_norm_with_a_group_per_channel() -> None:
    model = StyleTransferBlock()
    for norm in (model.net[2], model.seq):
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-1, 1)
    module = check_equivalent(model, (torch.randn(2, 3, 12, 12), torch.randn(2, 4, 10)))
    assert len(ops_named(module, "nn.layer_norm")) == 3


class NegativeIndices(tnn.Module):
    """Falcon splits its fused QKV with `x[..., [-2], :]`-style indices counted from the end."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, torch.tensor([-2, -1, 0])], x[:, :, torch.tensor([-1, 1])]


def test_negative_constant_indices_count_from_the_end() -> None:
    check_equivalent(NegativeIndices(), (torch.randn(2, 6, 4),))


class RescalesOnFirstCall(tnn.Module):
    """Updates a buffer in place as it runs (RWKV rescales its weights on the first call in eval
    mode): export returns the new buffer as an extra output, which is no output of the model."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = tnn.Linear(4, 3)
        self.register_buffer("scale", torch.full((3,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scale.mul_(0.5)
        return self.fc(x) * self.scale


def test_in_place_updates_of_buffers_are_not_outputs() -> None:
    with pytest.warns(ImportNote, match="forward updates scale in place: not an output"):
        module = import_module(RescalesOnFirstCall(), (torch.randn(2, 4),))
    (ret,) = [op for op in module.walk() if op.name == "func.return"]
    assert [str(v.type) for v in ret.operands] == ["tensor<2x3xbf16>"]


class BidirectionalTagger(tnn.Module):
    """A BiLSTM tagger (CRNN, NER): torch runs the reverse direction over the flipped sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = tnn.LSTM(6, 8, bidirectional=True, batch_first=True)
        self.head = tnn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.lstm(x)
        return self.head(out), x.flip(1, 2)


def test_flip_and_bidirectional_lstm_compute_what_the_module_computes() -> None:
    module = check_equivalent(BidirectionalTagger(), (torch.randn(2, 5, 6),))
    assert ops_named(module, "nn.gather")


class StandardizedConv(tnn.Conv2d):
    """BiT's weight-standardised convolution: a batch norm of the weight with its own statistics
    (`track_running_stats` style `None` statistics) before every use."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None, training=True, eps=1e-6
        ).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


def test_weight_standardisation_is_folded_at_import() -> None:
    model = StandardizedConv(3, 4, 3, padding=1)
    module = check_equivalent(model, (torch.randn(1, 3, 6, 6),))
    (folded,) = [op for op in ops_named(module, "nn.param") if "folded_from" in op.attributes]
    assert folded.attributes["folded_from"].data == "weight"  # type: ignore[attr-defined]
    assert not ops_named(module, "nn.layer_norm") and not ops_named(module, "nn.batch_norm")


class RandomMasking(tnn.Module):
    """ViTMAE-style random masking: noise drawn inside forward and sorted into positions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.rand(x.shape[0], x.shape[1])
        keep = torch.argsort(noise, dim=1)[:, :2]
        return x.gather(1, keep.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def test_random_numbers_and_positions_are_reported_with_what_to_do() -> None:
    with pytest.raises(ChiplexError) as info:
        import_module(RandomMasking(), (torch.randn(2, 5, 3),))
    message = str(info.value)
    assert (
        "aten.rand.default (random numbers" in message and "pass the noise as an input" in message
    )
    assert "aten.argsort.default (its result is positions in the data" in message
    with pytest.raises(ChiplexError, match=r"aten.argmax.default \(its result is positions"):
        import_module(_Argmax(), (torch.randn(2, 5),))


class _Argmax(tnn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(-1)


def test_sign_and_softshrink_compute_what_the_module_computes() -> None:
    class Shrink(tnn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.sign(x), F.softshrink(x, 0.3)

    x = torch.randn(3, 8)
    x[0, :3] = 0.0  # sign(0) is 0
    check_equivalent(Shrink(), (x,))
