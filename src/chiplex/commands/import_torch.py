"""`chiplex import-torch SPEC --input-shape 1x128 --dtype int64 -o model.mlir`: PyTorch to `nn` IR."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from chiplex.errors import EXIT_CODES_HELP, ChiplexError
from chiplex.ir.types import DTYPE_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-torch",
        help="import a PyTorch module (package.module:factory or a zoo model) as nn IR",
        epilog=EXIT_CODES_HELP,
        description=(
            "Call FACTORY to build a torch.nn.Module, capture it with torch.export on example inputs "
            "of the given shapes and dtypes, and write the equivalent func.func of nn ops. SPEC is "
            "`package.module:factory`, `path/to/file.py:factory`, or a zoo model name (bert_base, "
            "gpt2_small, resnet50, ...); literal arguments may follow: "
            "`chiplex.models:bert(2, hidden=64)`. Without --input-shape the module's "
            "example_inputs() method gives the inputs (every zoo model has one)."
        ),
    )
    p.add_argument(
        "spec", metavar="SPEC", help="package.module:factory, file.py:factory or zoo name"
    )
    p.add_argument(
        "--input-shape",
        action="append",
        metavar="SHAPE",
        help="shape of an input, like 1x128 (repeat, or separate with commas, for several inputs)",
    )
    p.add_argument(
        "--dtype",
        action="append",
        metavar="DTYPE",
        help="torch dtype of an input (float32, int64, ...): one per input, or one for all "
        "(default float32)",
    )
    p.add_argument(
        "--weight-dtype",
        default="i8",
        metavar="T",
        help=f"element type of the weights in the IR: {', '.join(DTYPE_NAMES)} or keep (default i8)",
    )
    p.add_argument(
        "--activation-dtype",
        default="bf16",
        metavar="T",
        help=f"element type of float activations: {', '.join(DTYPE_NAMES)} or keep (default bf16)",
    )
    p.add_argument("--name", help="symbol name of the function (default: the factory's name)")
    p.add_argument(
        "-o", "--output", type=Path, help="output .mlir file (default: print to standard output)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument(
        "--verify",
        action="store_true",
        help="run the module and the imported IR (reference interpreter, float32) on the same "
        "seeded random inputs and fail if their outputs differ by more than --verify-rtol",
    )
    p.add_argument(
        "--verify-rtol",
        type=float,
        default=1e-4,
        metavar="TOL",
        help="largest relative error --verify accepts: max |IR - torch| / max |torch| per output "
        "(default 1e-4)",
    )
    p.add_argument(
        "--verify-seed", type=int, default=0, metavar="N", help="seed of --verify's inputs (0)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out: Path | None = args.output
    if out is not None:
        from chiplex.fileio import check_ir_output_name, check_writable_file

        check_writable_file(out, force=args.force)
        check_ir_output_name(out, "the imported func.func of nn ops")
    # torch is slow to import: only once the arguments are known to be usable.
    import warnings

    from chiplex.commands._args import quiet_torch_export
    from chiplex.compile import module_text
    from chiplex.ir.torch_import import ImportNote, module_stats
    from chiplex.ir.verify_import import import_spec, verify_import

    if args.verify_rtol < 0:
        raise ChiplexError(f"--verify-rtol must be >= 0, got {args.verify_rtol}")
    started = time.perf_counter()
    with quiet_torch_export(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImportNote)
        imported_spec = import_spec(
            args.spec,
            args.input_shape,
            args.dtype,
            weight_dtype=args.weight_dtype,
            activation_dtype=args.activation_dtype,
            name=args.name,
        )
    ir = imported_spec.ir
    imported = time.perf_counter()
    for note in caught:
        if issubclass(note.category, ImportNote):
            print(f"chiplex: note: {note.message}", file=sys.stderr)
    if args.verify:
        # Before writing: a wrong import must not leave a file behind that looks fine.
        check = verify_import(
            imported_spec.model,
            imported_spec.example_inputs,
            ir,
            imported_spec.constants,
            seed=args.verify_seed,
        )
        print(check.summary(args.verify_rtol), file=sys.stderr)
        if not check.comparison.within(args.verify_rtol):
            raise ChiplexError(
                f"verify failed for {args.spec}: output {check.comparison.worst_output} differs "
                f"from torch by {check.comparison.max_rel:.3g} relative "
                f"(max abs {check.comparison.max_abs:.3g}), above --verify-rtol "
                f"{args.verify_rtol:g}: the imported IR does not compute what the module computes"
            )
    text = module_text(ir)
    if out is None:
        sys.stdout.write(text)
    else:
        from chiplex.fileio import atomic_write_text

        atomic_write_text(out, text)
    stats = module_stats(ir)
    # Statistics go to stderr so that stdout stays valid IR when no -o is given.
    print(
        f"imported {args.spec}: {stats.ops} ops, {stats.params} params "
        f"({stats.param_elements:,} elements, {stats.param_bytes / 2**20:.2f} MiB), "
        f"{stats.flops / 1e9:.2f} GFLOP in {imported - started:.1f} s"
        + (f" -> {out}" if out is not None else ""),
        file=sys.stderr,
    )
    return 0
