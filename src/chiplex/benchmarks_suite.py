"""The placement benchmark suite: the one list of (model, target) cases every placer is measured on.

`benchmarks/placement_quality.py` runs every search strategy (the learned placer included) on these
cases with equal budgets; tests and other benchmarks that want "the suite" import `SUITE` from here.
Cases are chosen so that placement matters: memory forces the cut (the paper's ring), there are more
chips than the model needs (how many to use and where to cut), routes on a mesh or torus share links,
links are slow against compute (ResNet's large activations), and weights stream from DRAM (Simba).
Models are the zoo's `examples/models/<name>.mlir`; targets are presets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SuiteCase:
    model: str
    """A zoo model: `examples/models/<model>.mlir` (or `chiplex import-torch`'s zoo spec)."""
    target: str
    """A preset name."""
    why: str
    """What makes placement matter here."""

    @property
    def spec(self) -> str:
        """`model@target`, the form benchmarks/placement_quality.py takes on its command line."""
        return f"{self.model}@{self.target}"


SUITE: tuple[SuiteCase, ...] = (
    SuiteCase(
        "bert_base",
        "tpu-ring8",
        "the paper's case (Xie et al., MLSys 2022): memory only just fits, so it forces the cut",
    ),
    SuiteCase(
        "bert_base",
        "tpu-ring8-2xsram",
        "the paper's ring with twice the SRAM: balance and link traffic alone decide",
    ),
    SuiteCase("bert_base", "tpu-ring16", "twice the chips the model needs: how many to use"),
    SuiteCase("vit_b16", "tpu-ring16", "197-token activations on slow links, 16 chips"),
    SuiteCase("resnet50", "tpu-ring4", "four stages of uneven convolutions: every cut counts"),
    SuiteCase("gpt2_small", "tpu-mesh4x4", "a 2D mesh: skip connections route over shared links"),
    SuiteCase("resnet50", "tpu-mesh4x4", "large activations on a mesh: links against compute"),
    SuiteCase("bert_base", "tpu-torus4x4", "a 2D torus: wrap-around routes"),
    SuiteCase("bert_base", "simba-6x6", "36 small chips, weights streaming from DRAM"),
    SuiteCase("resnet50", "simba-6x6", "36 small chips, many uneven layers"),
)
"""Every placer is measured on these; `SUITE[0]` is the paper's own setting."""
