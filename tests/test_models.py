"""The model zoo: factories, sizes, and the imported IR's parameter bytes and flops.

The checks of the issue: the imported IR's parameter bytes equal the module's parameter count times
the weight dtype's size, and its flops match an analytic count. The analytic count is each model's
`analytic_matmul_flops()` (closed form: 2 x MACs of every linear, convolution and attention
product), itself checked against torch's FlopCounterMode. The IR's matrix-unit flops (nn.matmul,
nn.batch_matmul, nn.conv2d) must equal it within 2% (they are equal), and the IR's total flops,
vector ops included, must be within 2% of it at the default sizes.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from chiplex.errors import ChiplexError
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import load_module
from chiplex.ir.torch_import import import_module, module_stats
from chiplex.models import (
    ZOO,
    bert,
    bert_base,
    example_inputs,
    gpt2,
    gpt2_medium,
    mlp,
    parameter_count,
    resnet,
    vit,
)
from chiplex.models.transformer import transformer_matmul_flops

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "bert": lambda: bert(2, 64, 4, seq=32),
    "bert_embeddings": lambda: bert(2, 64, 4, seq=32, with_embeddings=True, vocab_size=100),
    "gpt2": lambda: gpt2(2, 64, 4, seq=32, batch=2),
    "gpt2_embeddings": lambda: gpt2(1, 64, 4, seq=32, with_embeddings=True, vocab_size=100),
    "vit": lambda: vit(64, 16, 2, 64, 4, num_classes=10),
    "resnet_basic": lambda: resnet((1, 1, 1), width=8, image=64, num_classes=10),
    "resnet_bottleneck": lambda: resnet((2, 1), bottleneck=True, width=8, image=64),
    "mlp": lambda: mlp(64, 128, 3, 10, batch=8),
}

# Default sizes: parameter counts (torch's) and analytic matrix flops, as recorded in the docs.
EXPECTED = {
    "bert_layer": (7_087_872, 1_862_270_976),
    "bert_base": (85_054_464, 22_347_251_712),
    "bert_large": (302_309_376, 78_920_024_064),
    "gpt2_small": (85_056_000, 22_347_251_712),
    "gpt2_medium": (302_311_424, 78_920_024_064),
    "resnet18": (11_689_512, 3_628_146_688),
    "resnet50": (25_557_032, 8_178_368_512),
    "vit_b16": (86_567_656, 35_127_656_448),
    "mlp": (16_737_256, 1_070_596_096),
}


def _buffer_bytes(module) -> int:  # type: ignore[no-untyped-def]
    """Bytes of params that stand for buffers (the causal mask), not weights."""
    import chiplex.ir.nn as nn
    from chiplex.ir.types import tensor_bytes

    return sum(
        tensor_bytes(op.result.type)
        for op in module.walk()
        if isinstance(op, nn.ParamOp) and op.param_name.data == "causal_mask"
    )


def test_zoo_has_every_model_with_default_arguments() -> None:
    assert set(ZOO) == set(EXPECTED)
    for entry in ZOO.values():
        params = inspect.signature(entry.factory).parameters.values()
        assert all(p.default is not inspect.Parameter.empty for p in params), entry.name
        assert entry.description


@pytest.mark.parametrize("name", sorted(SMALL))
def test_analytic_flops_agree_with_torchs_flop_counter(name: str) -> None:
    model = SMALL[name]()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*example_inputs(model))
    assert counter.get_total_flops() == model.analytic_matmul_flops()  # type: ignore[operator]


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize(("dtype", "size"), [("i8", 1), ("bf16", 2)])
def test_param_bytes_and_flops_of_small_variants(name: str, dtype: str, size: int) -> None:
    model = SMALL[name]()
    module = import_module(model, example_inputs(model), weight_dtype=dtype)
    module.verify()
    stats = module_stats(module)
    assert stats.param_bytes - _buffer_bytes(module) == parameter_count(model) * size
    graph = graph_from_module(module)
    matrix = float(graph.flops[graph.is_matrix].sum())
    analytic = model.analytic_matmul_flops()  # type: ignore[operator]
    assert abs(matrix - analytic) <= 0.02 * analytic
    assert matrix == analytic  # every matrix op is accounted for, nothing else is
    assert stats.flops == graph.flops.sum()


def test_factories_are_seeded_and_sized() -> None:
    a, b = bert(1, 32, 2, seq=8), bert(1, 32, 2, seq=8)
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), n
    c = bert(1, 32, 2, seq=8, seed=1)
    assert not torch.equal(
        a.state_dict()["layers.0.attn.q.weight"], c.state_dict()["layers.0.attn.q.weight"]
    )
    state = torch.random.get_rng_state()
    bert(1, 32, 2, seq=8)
    assert torch.equal(state, torch.random.get_rng_state()), "factories must not reseed the caller"
    small = bert_base(num_layers=2, seq=64)
    assert len(small.layers) == 2 and small.hidden == 768
    assert example_inputs(small)[0].shape == (1, 64, 768)
    medium = gpt2_medium(num_layers=1, seq=16)
    assert medium.hidden == 1024 and medium.heads == 16
    ids = example_inputs(bert(1, 32, 2, seq=8, with_embeddings=True, vocab_size=10))[0]
    assert ids.dtype == torch.int64 and int(ids.max()) < 10
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        vit(image=30, patch=16)


def test_gpt2_attention_is_causal() -> None:
    model = gpt2(2, 32, 2, seq=8)
    (x,) = example_inputs(model)
    y = x.clone()
    y[:, -1] += 1.0
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_bert_default_is_the_encoder_without_embeddings() -> None:
    model = bert_base(num_layers=1)
    assert model.embeddings is None
    names = {n for n, _ in model.named_parameters()}
    assert "layers.0.ffn.w1.weight" in names and not any("word" in n for n in names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_examples_hold_every_zoo_model_at_its_default_size(name: str) -> None:
    module = load_module(ROOT / "examples" / "models" / f"{name}.mlir")
    stats = module_stats(module)
    params, flops = EXPECTED[name]
    assert stats.param_bytes - _buffer_bytes(module) == params  # int8 weights
    assert stats.matrix_flops == flops
    assert abs(stats.flops - flops) <= 0.02 * flops
    graph = graph_from_module(module)
    assert graph.name == name


def test_transformer_flop_formula() -> None:
    # BERT-base: 2 x 84.9 M weight params x 128 tokens, plus 12 layers of Q K^T and P V.
    weights = 12 * (4 * 768 * 768 + 2 * 768 * 3072)
    expected = 2 * weights * 128 + 12 * 4 * 128 * 128 * 768
    assert (
        transformer_matmul_flops(layers=12, hidden=768, ffn=3072, tokens=128, seq=128, batch=1)
        == expected
    )
    assert EXPECTED["bert_base"][1] == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_default_zoo_models_import_and_compile(name: str) -> None:
    """Import the default size, check bytes and flops, and compile for both targets (or get the
    explain message naming the memory shortfall)."""
    compile_mod = pytest.importorskip("chiplex.compile")
    model = ZOO[name].build()
    module = import_module(model, example_inputs(model), name=name)
    params, flops = EXPECTED[name]
    assert parameter_count(model) == params
    assert model.analytic_matmul_flops() == flops  # type: ignore[operator]
    stats = module_stats(module)
    assert stats.param_bytes - _buffer_bytes(module) == params
    assert abs(stats.flops - flops) <= 0.02 * flops
    from chiplex.targets.target import load_target

    for target in ("tpu-ring8", "simba-6x6"):
        try:
            result = compile_mod.compile_module(module.clone(), target)
        except ChiplexError as err:
            # Only a model whose weights (nearly) fill the whole package may fail, and it must say
            # that no legal placement exists. ViT-B/16 on tpu-ring8 is such a case: 82.6 MiB of
            # int8 weights in 8 x 13 MiB, and activations of 197 tokens on top of them.
            spec = load_target(target)
            capacity = spec.num_chips * spec.chip.capacity_bytes
            assert "no legal placement" in str(err), str(err)
            assert stats.param_bytes > 0.75 * capacity, f"{name} should fit {target}: {err}"
            continue
        assert result.schedule is not None


@pytest.mark.slow
def test_examples_are_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_zoo_examples.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
