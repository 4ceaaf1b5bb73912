"""`chiplex-opt`: xdsl-opt with the nn and mcm dialects and the chiplex passes."""

from __future__ import annotations

import sys

from xdsl.universe import Universe
from xdsl.xdsl_opt_main import xDSLOptMain

from chiplex.passes import PASSES


def _nn():  # type: ignore[no-untyped-def]
    from chiplex.ir.nn import NN

    return NN


def _mcm():  # type: ignore[no-untyped-def]
    from chiplex.ir.mcm import MCM

    return MCM


UNIVERSE = Universe(all_dialects={"nn": _nn, "mcm": _mcm}, all_passes=dict(PASSES))


class ChiplexOptMain(xDSLOptMain):
    def register_all_dialects(self) -> None:
        super().register_all_dialects()
        for name, factory in UNIVERSE.all_dialects.items():
            if name not in self.ctx.registered_dialect_names:
                self.ctx.register_dialect(name, factory)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        for name, factory in PASSES.items():
            self.available_passes[name] = factory


def main() -> int:
    from chiplex.errors import ChiplexError

    try:
        ChiplexOptMain().run()
    except ChiplexError as err:
        print(f"chiplex-opt: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
