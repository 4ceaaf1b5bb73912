"""Arguments shared by the subcommands: the model input and checked number types.

The model input is an `.mlir` file or a PyTorch spec (`package.module:factory`, `path/to/file.py:factory`
or a zoo model name), imported on the fly with the same options as `chiplex import-torch`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from chiplex.errors import ChiplexError

if TYPE_CHECKING:  # xDSL is imported by the handlers only, so that `chiplex --help` stays quick
    from xdsl.dialects.builtin import ModuleOp

INPUT_HELP = "an .mlir file, or a PyTorch `package.module:factory` / zoo model name"


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The positional input and the options that only matter when it is a PyTorch spec."""
    p.add_argument("input", help=INPUT_HELP)
    p.add_argument(
        "--input-shape",
        action="append",
        metavar="SHAPE",
        help="torch specs only: input shape like 1x128 (repeat per input)",
    )
    p.add_argument(
        "--dtype", action="append", metavar="DTYPE", help="torch specs only: dtype per input"
    )
    p.add_argument(
        "--weight-dtype",
        metavar="T",
        help="torch specs only: element type of the weights (default i8)",
    )
    p.add_argument(
        "--activation-dtype",
        metavar="T",
        help="torch specs only: element type of float activations (default bf16)",
    )


@contextlib.contextmanager
def quiet_torch_export() -> Iterator[None]:
    """Keep torch's logged tracebacks off the user's terminal: torch.export logs a full traceback
    (logger `torch._subclasses.fake_tensor`) or its guesses at the user's code for a data-dependent
    branch (`torch.fx.experimental.symbolic_shapes`) before raising the error chiplex reports,
    located."""
    import logging

    loggers = [
        logging.getLogger(name)
        for name in ("torch._subclasses.fake_tensor", "torch.fx.experimental.symbolic_shapes")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def load_input(args: argparse.Namespace) -> tuple[ModuleOp, str]:
    """The module named by `args.input` and a short name for output paths and reports."""
    from chiplex.ir.parse import load_module

    source: str = args.input
    torch_only = {
        "--input-shape": args.input_shape,
        "--dtype": args.dtype,
        "--weight-dtype": args.weight_dtype,
        "--activation-dtype": args.activation_dtype,
    }
    if source.endswith(".mlir") or (Path(source).exists() and not source.endswith(".py")):
        given = [option for option, value in torch_only.items() if value is not None]
        if given:
            # The IR file's types are what it says; an option that would be ignored is a mistake.
            raise ChiplexError(
                f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to a PyTorch "
                f"module only; {source} is an IR file, whose types are written in it"
            )
        return load_module(source), Path(source).stem
    try:
        from chiplex.ir.torch_import import load_model_spec
    except ImportError:
        raise ChiplexError(
            f"{source}: no such file (and the PyTorch importer is not available)"
        ) from None
    with quiet_torch_export():
        module = load_model_spec(
            source,
            args.input_shape,
            args.dtype,
            args.weight_dtype or "i8",
            args.activation_dtype or "bf16",
        )
    return module, source.split(":")[-1].split("(")[0]


def _number(text: str, kind: type[int] | type[float], what: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = int(_number(text, int, "a whole number"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(_number(text, int, "a whole number"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def byte_size(text: str) -> int:
    """A positive number of bytes, bare or with a unit as in target TOML files ("4096", "4 KiB")."""
    from chiplex.targets.schema import parse_size

    value = parse_size(text.strip()) if not text.strip().isdigit() else int(text)
    if value is None:
        raise argparse.ArgumentTypeError(
            f"expected bytes, bare or with a unit like 4KiB or 1 MB, got {text!r}"
        )
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 byte, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = float(_number(text, float, "a number"))
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value:g}")
    return value


# -- where evaluations run ---------------------------------------------------------------------------
# Kept in step with chiplex.runtime_sim.evaluate.EXECUTOR_KINDS (not imported: `--help` stays quick).
EXECUTOR_CHOICES = ("serial", "local", "ray")


def add_full_budget_argument(p: argparse.ArgumentParser) -> None:
    """`--full-budget`, for the commands that search (`search`, `finetune`)."""
    p.add_argument(
        "--full-budget",
        action="store_true",
        help="spend the whole budget even after a placement reaches the throughput upper bound "
        "(by default the search stops there: no placement can be faster)",
    )


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """`--executor {serial,local,ray}` and `--ray-address`; read them back with `executor_from_args`."""
    p.add_argument(
        "--executor",
        choices=EXECUTOR_CHOICES,
        help="where evaluations run: serial (this process), local (a process pool), ray (a Ray "
        "cluster, see docs/scale-out.md); default: local, or serial with --workers 1",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join (implies --executor ray); default: $RAY_ADDRESS, else a local "
        "Ray started for this run",
    )


def executor_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The executor the options ask for (`args.workers`, when the command has it, sizes it).
    Not started: the caller passes it to `search` (or starts it) and closes it when done."""
    from chiplex.runtime_sim.evaluate import make_executor

    kind = args.executor or ("ray" if args.ray_address else None)
    return make_executor(
        getattr(args, "workers", None),
        kind,
        args.ray_address,
        progress=lambda line: print(f"note: {line}", file=sys.stderr, flush=True),
    )
