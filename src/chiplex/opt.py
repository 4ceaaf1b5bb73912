"""`chiplex-opt`: run a pass pipeline on an IR file, like `xdsl-opt`, with chiplex's dialects, passes,
plugins and error handling.

It reads MLIR text (a file, or standard input), runs `-p` (chiplex's passes, a plugin's passes, or any of
xDSL's own such as `canonicalize`), and prints the result (or writes it atomically to `-o`). Bad IR, an
unknown pass or a failing pass is a located error with exit code 1; nothing is written then.

`UNIVERSE` also makes chiplex's dialects and passes visible to the stock `xdsl-opt` (entry point
`xdsl.universe`).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import warnings
from collections.abc import Callable

from xdsl.universe import Universe

from chiplex.errors import EXIT_CODES_HELP, EXIT_ERROR, EXIT_INTERRUPTED, ChiplexError
from chiplex.passes import PASSES


def _nn():  # type: ignore[no-untyped-def]
    from chiplex.ir.nn import NN

    return NN


def _mcm():  # type: ignore[no-untyped-def]
    from chiplex.ir.mcm import MCM

    return MCM


UNIVERSE = Universe(all_dialects={"nn": _nn, "mcm": _mcm}, all_passes=dict(PASSES))


def _shown_default(value: object) -> str:
    """A default as a pipeline string spells it (`false`, not Python's `False`)."""
    import dataclasses

    if value is dataclasses.MISSING:
        return "?"
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe_passes() -> str:
    """One paragraph per chiplex pass: its name, options (with defaults) and the docstring's gist."""
    import dataclasses

    lines = []
    for name, factory in PASSES.items():
        cls = factory()
        options = " ".join(
            f"{f.name}={_shown_default(f.default)}" for f in dataclasses.fields(cls) if f.init
        )
        doc = (cls.__doc__ or "").strip()
        if not doc or doc.startswith(f"{cls.__name__}("):  # dataclass's generated signature
            module = sys.modules.get(cls.__module__)
            doc = ((module.__doc__ if module else None) or "").strip()
            doc = doc.split(":", 1)[-1].strip() if doc.startswith("`") else doc
        # The first sentence of the first paragraph (a docstring's first line may stop mid-sentence).
        paragraph = " ".join(doc.split("\n\n")[0].split())
        summary = re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]
        head = f"  {name}" + (f"{{{options}}}" if options else "")
        lines.append(head)
        if summary:
            lines.extend(
                textwrap.wrap(summary, 96, initial_indent="      ", subsequent_indent="      ")
            )
    return "\n".join(lines)


def _all_passes() -> dict[str, Callable[[], type]]:
    from xdsl.transforms import get_all_passes

    return {**get_all_passes(), **PASSES}  # chiplex's names win


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chiplex-opt",
        description=(
            "Run a pass pipeline on an IR file of nn/mcm ops and print the result. "
            "Passes come from chiplex (below), from --plugin files, or from xDSL (canonicalize, "
            "dce, ...: --list-xdsl-passes)."
        ),
        epilog="chiplex passes (options with their defaults):\n"
        + describe_passes()
        + "\n\nexamples:\n"
        "  chiplex-opt examples/models/mlp.mlir -p 'annotate-costs{target=tpu-ring8},place'\n"
        "  chiplex-opt model.mlir --plugin my_pass.py -p 'my-pass' -o lowered.mlir\n\n"
        + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", nargs="?", default="-", help="IR file (default: standard input)")
    parser.add_argument(
        "-p",
        "--passes",
        default="",
        metavar="PIPELINE",
        help="comma-separated passes with options, 'a{opt=1},b' (default: none, just verify and print)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("--force", action="store_true", help="overwrite an existing -o file")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE.py",
        help="a Python file whose ModulePasses become available (repeatable)",
    )
    parser.add_argument(
        "--list-passes", action="store_true", help="list chiplex's passes and their options"
    )
    parser.add_argument(
        "--list-xdsl-passes", action="store_true", help="list the names of xDSL's own passes"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from xdsl.utils.exceptions import ArgSpecParseError, ParseError

    from chiplex.compile import _apply, module_text, verify_module
    from chiplex.fileio import atomic_write_text, check_ir_output_name, check_writable_file
    from chiplex.ir.parse import make_context, parse_module, read_ir_text
    from chiplex.passes import load_plugins
    from chiplex.passes.options import (
        PassOptionError,
        parse_pass_pipeline,
        pipeline_hint,
        warn_unused_plugin_passes,
    )

    plugin_passes = load_plugins(args.plugin)
    if args.list_passes:
        print("chiplex passes:\n" + describe_passes())
        return 0
    if args.list_xdsl_passes:
        print("\n".join(sorted(set(_all_passes()) - set(PASSES))))
        return 0
    if args.output:
        check_writable_file(args.output, force=args.force)
        check_ir_output_name(args.output, "the module after the passes")
    available = _all_passes()
    warn_unused_plugin_passes(plugin_passes, args.passes, "-p", known=available)
    try:
        pipeline = parse_pass_pipeline(available, args.passes) if args.passes else None
    except PassOptionError as err:
        raise ChiplexError(f"bad pipeline {args.passes!r}: {err}") from None
    except (ArgSpecParseError, ParseError, ValueError, TypeError, KeyError) as err:
        hint = pipeline_hint(str(err), args.passes, available)
        raise ChiplexError(
            f"bad pipeline {args.passes!r}: {err}{hint}. chiplex passes: {', '.join(PASSES)} "
            "(--list-passes shows their options)"
        ) from None
    if args.input == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        text, name = read_ir_text(args.input), args.input
    module = parse_module(text, name)
    if pipeline is not None:
        ctx = make_context()
        for p in pipeline.passes:
            _apply(p, ctx, module)
        verify_module(module, "the pipeline")
    result = module_text(module)
    if args.output:
        atomic_write_text(args.output, result)
    else:
        sys.stdout.write(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    from chiplex.cli import WarningPrinter, os_error_message, report_internal_error

    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = WarningPrinter("chiplex-opt")
            return run(args)
    except ChiplexError as err:
        print(f"chiplex-opt: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("chiplex-opt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:
        print(f"chiplex-opt: error: {os_error_message(err)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - a bug: one clear line, the traceback on request
        return report_internal_error("chiplex-opt", err)


if __name__ == "__main__":
    sys.exit(main())
