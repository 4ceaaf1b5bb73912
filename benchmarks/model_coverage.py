"""Model coverage: popular architectures from a public model library, imported and compiled.

    nice -n 10 .venv/bin/python benchmarks/model_coverage.py [NAME ...] [--targets tpu-ring8,simba-6x6]
        [--import-only] [--timeout 900] [--cache results.json [--report-only]]
        [--out benchmarks/results/model_coverage.md]

Every model is built offline from its configuration in Hugging Face `transformers` (the `bench`
extra: `pip install -e ".[bench]"`), with random weights and no download: encoders, decoders,
encoder-decoders' encoders, CNNs, vision transformers and speech encoders. For each model:

- **import**: `import_with_constants` with int8 weights and bf16 activations; the op count, the
  parameter count against torch's own (`sum(p.numel() for p in model.parameters())`, shared
  parameters once; params that stand for buffers and folded constants are not counted), and the
  matrix-unit GFLOP against `torch.utils.flop_counter.FlopCounterMode` (which counts matrix
  products and convolutions only, as the IR's `nn.matmul`, `nn.batch_matmul` and `nn.conv2d` do);
- **compile**: the default pipeline (`shard-params`, then dp placement) on each target, then the
  estimated throughput of the placement and the simulated one (16 micro-batches), or the error.

Each import and each compile runs in its own process with a time limit, so a placement the solver
cannot decide does not stop the table. Results go to `benchmarks/results/model_coverage.md`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("tpu-ring8", "simba-6x6")
MICROBATCHES = 16
PARAM_GOAL = "exact"
FLOPS_TOLERANCE = 0.02
COVERAGE_GOAL = 0.9


# -- the models ----------------------------------------------------------------------------------


class Select(torch.nn.Module):
    """Calls `module` with fixed keyword arguments and keeps the tensor outputs a user reads."""

    def __init__(self, module: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__()
        self.module = module
        self.kwargs = kwargs

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.module(*inputs, **self.kwargs)


def _ids(seq: int = 128, batch: int = 1) -> tuple[torch.Tensor, ...]:
    # Token ids 1..; not all zeros so that padding masks (`ids.ne(pad)`) are not constant.
    return (torch.arange(1, seq + 1).remainder(1000).reshape(1, seq).repeat(batch, 1),)


def _image(size: int = 224) -> tuple[torch.Tensor, ...]:
    return (torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)),)


def _audio(samples: int = 16000) -> tuple[torch.Tensor, ...]:
    return (torch.randn(1, samples, generator=torch.Generator().manual_seed(0)),)


# Decoder-only models at about GPT-2-small size (the libraries' default configurations of LLaMA,
# Mistral, Qwen2 or Phi are multi-billion-parameter models).
_SMALL_DECODER = {
    "hidden_size": 768,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "vocab_size": 32000,
}


def _hf(cls_name: str, config_name: str, **config: Any) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        import transformers

        cfg = getattr(transformers, config_name)(**config)
        return getattr(transformers, cls_name)(cfg)

    return build


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[], tuple[torch.Tensor, ...]]
    kwargs: tuple[tuple[str, Any], ...] = ()
    encoder_only: bool = False
    """Import the model's `encoder` submodule (encoder-decoders)."""

    def model(self) -> torch.nn.Module:
        torch.manual_seed(0)
        module = self.build()
        if self.encoder_only:
            module = module.get_encoder()
        return Select(module.eval(), **dict(self.kwargs))


_NO_CACHE = (("use_cache", False),)
CASES: tuple[Case, ...] = (
    # encoders
    Case("bert-base", "encoder", _hf("BertModel", "BertConfig"), _ids),
    Case("roberta-base", "encoder", _hf("RobertaModel", "RobertaConfig"), _ids),
    Case("distilbert-base", "encoder", _hf("DistilBertModel", "DistilBertConfig"), _ids),
    Case(
        "albert-base",
        "encoder",
        _hf(
            "AlbertModel",
            "AlbertConfig",
            hidden_size=768,
            num_attention_heads=12,
            intermediate_size=3072,
        ),
        _ids,
    ),
    Case("electra-small", "encoder", _hf("ElectraModel", "ElectraConfig"), _ids),
    Case(
        "deberta-v2-base",
        "encoder",
        _hf(
            "DebertaV2Model",
            "DebertaV2Config",
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            vocab_size=128100,
        ),
        _ids,
    ),
    Case("mpnet-base", "encoder", _hf("MPNetModel", "MPNetConfig"), _ids),
    Case(
        "xlm-roberta-base",
        "encoder",
        _hf("XLMRobertaModel", "XLMRobertaConfig", vocab_size=250002),
        _ids,
    ),
    # decoders
    Case("gpt2", "decoder", _hf("GPT2Model", "GPT2Config"), _ids),
    Case(
        "gpt-neo-125m",
        "decoder",
        _hf(
            "GPTNeoModel",
            "GPTNeoConfig",
            hidden_size=768,
            num_layers=12,
            num_heads=12,
            attention_types=[[["global", "local"], 6]],
        ),
        _ids,
        _NO_CACHE,
    ),
    Case("opt-125m", "decoder", _hf("OPTModel", "OPTConfig"), _ids, _NO_CACHE),
    Case(
        "llama-small",
        "decoder",
        _hf("LlamaModel", "LlamaConfig", **_SMALL_DECODER, num_key_value_heads=4),
        _ids,
        _NO_CACHE,
    ),
    Case(
        "mistral-small",
        "decoder",
        _hf("MistralModel", "MistralConfig", **_SMALL_DECODER, num_key_value_heads=4),
        _ids,
        _NO_CACHE,
    ),
    Case(
        "qwen2-small",
        "decoder",
        _hf("Qwen2Model", "Qwen2Config", **_SMALL_DECODER, num_key_value_heads=4),
        _ids,
        _NO_CACHE,
    ),
    Case("phi-small", "decoder", _hf("PhiModel", "PhiConfig", **_SMALL_DECODER), _ids, _NO_CACHE),
    Case(
        "bloom-small",
        "decoder",
        _hf("BloomModel", "BloomConfig", hidden_size=768, n_layer=12, n_head=12),
        _ids,
        _NO_CACHE,
    ),
    Case("gpt2-with-cache", "decoder", _hf("GPT2Model", "GPT2Config", n_layer=2), _ids),
    # encoder-decoders' encoders
    Case("t5-small-encoder", "enc-dec encoder", _hf("T5EncoderModel", "T5Config"), _ids),
    Case(
        "bart-large-encoder",
        "enc-dec encoder",
        _hf("BartModel", "BartConfig"),
        _ids,
        encoder_only=True,
    ),
    Case(
        "pegasus-encoder",
        "enc-dec encoder",
        _hf(
            "PegasusModel",
            "PegasusConfig",
            d_model=768,
            encoder_layers=12,
            decoder_layers=12,
            encoder_attention_heads=12,
            decoder_attention_heads=12,
            encoder_ffn_dim=3072,
            decoder_ffn_dim=3072,
        ),
        _ids,
        encoder_only=True,
    ),
    # CNNs
    Case("resnet-50", "CNN", _hf("ResNetModel", "ResNetConfig"), _image),
    Case("convnext-tiny", "CNN", _hf("ConvNextModel", "ConvNextConfig"), _image),
    Case("mobilenet-v2", "CNN", _hf("MobileNetV2Model", "MobileNetV2Config"), _image),
    Case("efficientnet-b7", "CNN", _hf("EfficientNetModel", "EfficientNetConfig"), _image),
    Case("regnet-y-040", "CNN", _hf("RegNetModel", "RegNetConfig"), _image),
    # vision transformers
    Case("vit-base", "ViT", _hf("ViTModel", "ViTConfig"), _image),
    Case("deit-base", "ViT", _hf("DeiTModel", "DeiTConfig"), _image),
    Case("swin-tiny", "ViT", _hf("SwinModel", "SwinConfig"), _image),
    Case("beit-base", "ViT", _hf("BeitModel", "BeitConfig"), _image),
    Case("clip-vit-b32", "ViT", _hf("CLIPVisionModel", "CLIPVisionConfig"), _image),
    # speech encoders
    Case("wav2vec2-base", "speech", _hf("Wav2Vec2Model", "Wav2Vec2Config"), _audio),
    Case("hubert-base", "speech", _hf("HubertModel", "HubertConfig"), _audio),
    Case(
        "whisper-base-encoder",
        "speech",
        _hf(
            "WhisperModel",
            "WhisperConfig",
            d_model=512,
            encoder_layers=6,
            decoder_layers=6,
            encoder_attention_heads=8,
            decoder_attention_heads=8,
            encoder_ffn_dim=2048,
            decoder_ffn_dim=2048,
        ),
        lambda: (torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0)),),
        encoder_only=True,
    ),
)
CASE_BY_NAME = {c.name: c for c in CASES}
EXPLAINED = {
    "wav2vec2-base, hubert-base parameters": "768 fewer than torch's: `masked_spec_embed`, the "
    "vector that replaces masked time steps in training, is read by no op at inference and so is "
    "not in the IR (the importer emits a parameter at its first use). Their positional "
    "convolution's weight normalisation is folded at import into one weight (`folded_from` names "
    "its two parameters, which count here).",
    "tpu-ring8": "8 x 13 MiB. 'host lookup': a token table larger than a chip, read at the ids the "
    "user feeds, stays on the host, which sends the gathered rows (`host-embeddings`; the compile "
    "summary gives the bytes per sample), so models whose other weights fit compile, even "
    "xlm-roberta-base and bloom-small with 183 MiB tables. 'split rows': the default pipeline found "
    "no placement, and `chiplex compile` placed the model with its feed-forward and attention "
    "blocks split by rows (`split-rows`, `rematerialize`). 'tensor parallel': with the rows split "
    "there was still no placement, and `chiplex compile` placed the model with its feed-forward "
    "weight matrices also split by hidden features into shards of at most 1/32 of a chip "
    "(`tensor-parallel`, Megatron-style): ViT-base, DeiT, BEiT (83 MiB; dp's best contiguous split "
    "needed 13.75 MiB chips with whole matrices), wav2vec2 and HuBERT (13.625) "
    "(docs/sharding.md has the arithmetic). Over 104 MiB once the tables left, so no placement "
    "can exist: bart-large-encoder (145.5 MiB; the error says what would fit).",
    "Whisper": "the encoder's 8 x 1500 x 1500 attention scores (34 MiB per op) are split by query "
    "rows (`split-rows`); whole, no chip could hold one.",
}


# -- one import, one compile (each in a child process) -------------------------------------------


def run_import(case: Case, ir_path: Path) -> dict[str, Any]:
    import warnings

    from torch.utils.flop_counter import FlopCounterMode

    from chiplex.compile import module_text
    from chiplex.errors import ChiplexError
    from chiplex.ir.torch_import import ImportNote, import_with_constants, module_stats

    started = time.perf_counter()
    model = case.model()
    inputs = case.inputs()
    row: dict[str, Any] = {
        "torch_params": sum(p.numel() for p in model.parameters()),
        "build_s": time.perf_counter() - started,
    }
    _count_cpu_attention()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    row["ref_flops"] = counter.get_total_flops()
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ImportNote)
            module, _ = import_with_constants(model, inputs, name=case.name.replace("-", "_"))
    except ChiplexError as e:
        row["error"] = str(e)
        return row
    row["import_s"] = time.perf_counter() - started
    row["notes"] = [str(w.message) for w in caught if issubclass(w.category, ImportNote)]
    stats = module_stats(module)
    from chiplex.ir import nn

    # The parameters of torch's count the IR reads: by name, directly or through a weight
    # computed from them at import (`folded_from`: weight normalisation). Params that stand for
    # buffers and folded constants are not torch parameters.
    # A tied parameter has several names (T5's `shared.weight` is `encoder.embed_tokens.weight`);
    # torch counts it once under its first name, the IR may use another: count tensors, not names.
    tensor_of = {name: p for name, p in model.named_parameters(remove_duplicate=False)}
    read: set[str] = set()
    for op in module.walk():
        if isinstance(op, nn.ParamOp):
            read.add(op.param_name.data)
            folded = op.attributes.get("folded_from")
            if folded is not None:
                read |= set(folded.data.split(","))  # type: ignore[attr-defined]
    row |= {
        "ops": stats.ops,
        "params": sum(
            t.numel()
            for t in {id(tensor_of[n]): tensor_of[n] for n in read if n in tensor_of}.values()
        ),
        "param_mib": stats.param_bytes / 2**20,
        "matrix_flops": stats.matrix_flops,
        "flops": stats.flops,
    }
    ir_path.write_text(module_text(module))
    return row


def _count_cpu_attention() -> None:
    """FlopCounterMode has formulas for the CUDA attention kernels, not for the CPU one that
    `scaled_dot_product_attention` runs here: count it with torch's own SDPA formula."""
    from torch.utils import flop_counter

    op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    if op in flop_counter.flop_registry or op.default in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(op)
    def _cpu_sdpa(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
        # The formula sees shapes (torch.Size), not tensors.
        return flop_counter.sdpa_flop_count(query, key, value)


def run_compile(ir_path: Path, target: str) -> dict[str, Any]:
    from chiplex.compile import compile_module
    from chiplex.errors import ChiplexError
    from chiplex.ir.parse import load_module
    from chiplex.runtime_sim import simulate
    from chiplex.targets.cost import estimate

    started = time.perf_counter()
    try:
        result = compile_module(load_module(str(ir_path)), target)
    except ChiplexError as e:
        return {"error": str(e), "compile_s": time.perf_counter() - started}
    row: dict[str, Any] = {"compile_s": time.perf_counter() - started}
    est = estimate(result.graph, result.target, result.placement)
    row["estimated"] = est.throughput
    row["chips"] = int(len(set(result.placement.tolist())))
    row["tensor_parallel"] = "chiplex.tensor_parallel" in result.placed_ir
    # tensor-parallel's weight shards carry `shard_of` too: 'sharded' is shard-params' mark.
    row["sharded"] = "nn.embedding_shard" in result.placed_ir or (
        "shard_of" in result.placed_ir and not row["tensor_parallel"]
    )
    row["host"] = "chiplex.host_lookups" in result.placed_ir
    row["split_rows"] = "chiplex.split_rows" in result.placed_ir
    assert result.schedule is not None
    report = simulate(result.schedule, result.target, microbatches=MICROBATCHES)
    row["simulated"] = report.throughput
    return row


# -- the driver ---------------------------------------------------------------------------------


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"crashed (exit {done.returncode}): {tail}"}


def _first_line(text: str, width: int = 110) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # "no legal placement exists:" heads the reasons listed under it: "exists: reason; reason".
    out = "".join(
        f"{line}{'' if i == len(lines[:3]) - 1 else ' ' if line.endswith(':') else '; '}"
        for i, line in enumerate(lines[:3])
    )
    return (out[: width - 3] + "...") if len(out) > width else out


def _throughput(row: dict[str, Any], width: int = 90) -> str:
    if "error" in row:
        return f"error: {_first_line(row['error'], width)}"
    shard = (
        (", host lookup" if row.get("host") else "")
        + (", sharded" if row.get("sharded") else "")
        + (", split rows" if row.get("split_rows") else "")
        + (", tensor parallel" if row.get("tensor_parallel") else "")
    )
    return f"ok ({row['chips']} chips{shard}): est {row['estimated']:,.0f} / sim {row['simulated']:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help=f"models (default: all {len(CASES)})")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--import-only", action="store_true")
    parser.add_argument(
        "--report-only", action="store_true", help="run nothing: write the report from --cache"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds per import or compile"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/model_coverage.md")
    parser.add_argument(
        "--cache",
        type=Path,
        help="JSON file of results by model: a run of some models updates it, and the report "
        "(written once every model has a row) is made from all of it",
    )
    parser.add_argument("--child-import", nargs=2, metavar=("NAME", "IR"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--child-compile", nargs=2, metavar=("IR", "TARGET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child_import:
        name, ir = args.child_import
        print(json.dumps(run_import(CASE_BY_NAME[name], Path(ir))))
        return 0
    if args.child_compile:
        ir, target = args.child_compile
        print(json.dumps(run_compile(Path(ir), target)))
        return 0
    try:
        import transformers
    except ImportError:
        parser.error('needs the bench extra: pip install -e ".[bench]"')
    unknown = [n for n in args.names if n not in CASE_BY_NAME]
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; known: {', '.join(CASE_BY_NAME)}")
    cases = [CASE_BY_NAME[n] for n in args.names] if args.names else list(CASES)
    if args.report_only:
        cases = []
    targets = [] if args.import_only else [t for t in args.targets.split(",") if t]
    # Results by model name: a rerun of some models updates their rows in the cache.
    cache: dict[str, Any] = (
        json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    )
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            ir = Path(tmp) / f"{case.name}.mlir"
            row = _child(["--child-import", case.name, str(ir)], args.timeout)
            compiled = {}
            if "error" not in row:
                for target in targets:
                    compiled[target] = _child(["--child-compile", str(ir), target], args.timeout)
            print(_line(case, row, compiled, targets), flush=True)
            if not args.import_only:
                cache[case.name] = {"import": row, "compile": compiled}
                if args.cache:
                    args.cache.write_text(json.dumps(cache, indent=1))
    rows = [
        (case, cache[case.name]["import"], cache[case.name]["compile"])
        for case in CASES
        if case.name in cache
    ]
    if args.import_only:
        return 0
    missing = [case.name for case in CASES if case.name not in cache]
    report = _report(rows, targets, transformers.__version__, missing)
    print(report.split("\n\n", 2)[1])
    if args.cache or not args.names:
        args.out.write_text(report)
        print(f"wrote {args.out}")
    return 0


def _params_cell(row: dict[str, Any]) -> str:
    mark = "=" if row["params"] == row["torch_params"] else "!="
    return f"{row['params']:,} {mark} {row['torch_params']:,}"


def _flops_cell(row: dict[str, Any]) -> str:
    ref = row["ref_flops"]
    diff = (row["matrix_flops"] - ref) / ref if ref else 0.0
    return f"{row['matrix_flops'] / 1e9:.2f} / {ref / 1e9:.2f} ({diff:+.1%})"


def _line(
    case: Case, row: dict[str, Any], compiled: dict[str, dict[str, Any]], targets: list[str]
) -> str:
    if "error" in row:
        return f"{case.name:<22} import error: {_first_line(row['error'])}"
    cells = [f"{row['ops']} ops", _params_cell(row), _flops_cell(row), f"{row['import_s']:.1f} s"]
    cells += [f"{t}: {_throughput(compiled[t])}" for t in targets]
    return f"{case.name:<22} " + " | ".join(cells)


def _good(row: dict[str, Any]) -> bool:
    if "error" in row:
        return False
    ref = row["ref_flops"]
    close = abs(row["matrix_flops"] - ref) <= FLOPS_TOLERANCE * ref
    return row["params"] == row["torch_params"] and close


def _report(
    rows: list[tuple[Case, dict[str, Any], dict[str, dict[str, Any]]]],
    targets: list[str],
    version: str,
    missing: list[str],
) -> str:
    imported = sum("error" not in r for _, r, _ in rows)
    good = sum(_good(r) for _, r, _ in rows)
    lines = [
        f"# Model coverage: {len(rows)} of {len(CASES)} architectures from transformers {version}",
        "",
        f"Imported: {imported}/{len(rows)}; with exact parameter counts and matrix flops within "
        f"{FLOPS_TOLERANCE:.0%} of FlopCounterMode: {good}/{len(rows)} ({good / len(rows):.0%}, "
        f"goal {COVERAGE_GOAL:.0%}).",
    ]
    for t in targets:
        ok = sum("error" not in c.get(t, {"error": ""}) for _, _, c in rows)
        lines.append(f"Compiled on {t}: {ok}/{len(rows)}.")
    lines += [
        "",
        "Command: `nice -n 10 .venv/bin/python benchmarks/model_coverage.py` (int8 weights, bf16 "
        f"activations, batch 1, 128 tokens / 224x224 images / 1 s of 16 kHz audio / 30 s of "
        f"Whisper features; throughput in samples/s, estimated / simulated with {MICROBATCHES} "
        "micro-batches). Parameters: the IR's count = or != torch's. GFLOP: the IR's matrix-unit "
        "flops / FlopCounterMode's (difference).",
        "",
        "| model | family | ops | parameters (IR vs torch) | MiB int8 | GFLOP matrix (IR / torch) | total GFLOP | import s | "
        + " | ".join(targets)
        + " |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(targets),
    ]
    for case, row, compiled in rows:
        if "error" in row:
            err = _first_line(row["error"], 300).replace("|", "\\|")
            lines.append(
                f"| {case.name} | {case.family} | import failed: {err} |"
                + " |" * (6 + len(targets))
            )
            continue
        cells = [
            case.name,
            case.family,
            str(row["ops"]),
            _params_cell(row),
            f"{row['param_mib']:.1f}",
            _flops_cell(row),
            f"{row['flops'] / 1e9:.2f}",
            f"{row['import_s']:.1f}",
        ] + [_throughput(compiled[t], 240).replace("|", "\\|") for t in targets]
        lines.append("| " + " | ".join(cells) + " |")
    if missing:
        lines += ["", f"Not measured in this run: {', '.join(missing)}."]
    lines += ["", "Why numbers differ:", ""] + [f"- {k}: {v}" for k, v in EXPLAINED.items()]
    notes = [(case.name, n) for case, row, _ in rows for n in row.get("notes", [])]
    if notes:
        lines += ["", "Import notes:", ""] + [f"- {name}: {n}" for name, n in notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
