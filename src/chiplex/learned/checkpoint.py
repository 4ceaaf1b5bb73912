"""Policy checkpoints: the torch state dict plus a JSON header saying what the weights are.

A checkpoint is one `torch.save` file holding

    {"header": "<JSON>", "state_dict": {name: tensor}, "trainer": {...} (optional, to resume PPO)}

and the header (a JSON string: `load_checkpoint(path).header.to_json()` prints it) carries

    format, format_version      "chiplex-learned-policy", 1
    feature_version             chiplex.learned.features.FEATURE_VERSION the weights read
    policy                      PolicyConfig as a dict (the sizes the state dict must match)
    ppo                         PPOConfig it was trained with
    trained_on                  a list of {graph, target, ops, chips, evaluations, updates, seed} runs, appended
                                to by every fine-tune
    created_by                  the command that wrote it

Loading uses `torch.load(weights_only=True)`: no code from the file runs. A missing, truncated or
foreign file, another feature version or other sizes give one `ChiplexError` naming the file and the
mismatch.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from chiplex.errors import ChiplexError
from chiplex.fileio import atomic_write_bytes
from chiplex.learned.features import FEATURE_VERSION
from chiplex.learned.policy import PlacementPolicy, PolicyConfig
from chiplex.learned.ppo import PPOConfig

FORMAT = "chiplex-learned-policy"
FORMAT_VERSION = 1


@dataclass
class CheckpointHeader:
    policy: PolicyConfig
    ppo: PPOConfig
    trained_on: list[dict[str, Any]] = field(default_factory=list)
    created_by: str = ""
    feature_version: int = FEATURE_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "feature_version": self.feature_version,
                "policy": dataclasses.asdict(self.policy),
                "ppo": dataclasses.asdict(self.ppo),
                "trained_on": self.trained_on,
                "created_by": self.created_by,
            },
            indent=1,
        )


@dataclass
class Checkpoint:
    header: CheckpointHeader
    policy: PlacementPolicy
    trainer: dict[str, Any] | None = None
    """`PPO.state_dict()` when saved for resuming, else None."""


def save_checkpoint(
    path: str | Path,
    policy: PlacementPolicy,
    header: CheckpointHeader,
    trainer: dict[str, Any] | None = None,
) -> None:
    """Write atomically (a temporary file renamed over `path`): an interrupted save leaves no half file."""
    path = Path(path)
    payload: dict[str, Any] = {"header": header.to_json(), "state_dict": policy.state_dict()}
    if trainer is not None:
        payload["trainer"] = trainer
    data = io.BytesIO()
    torch.save(payload, data)
    atomic_write_bytes(path, data.getvalue(), make_parents=False)


def _config(cls: type, values: object, path: Path, what: str) -> Any:
    if not isinstance(values, dict):
        raise ChiplexError(f"{path}: checkpoint header has no '{what}' table")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ChiplexError(f"{path}: checkpoint '{what}' has unknown keys {', '.join(unknown)}")
    for f in dataclasses.fields(cls):
        if f.name in values and not _valid_setting(str(f.type), f.name, values[f.name]):
            raise ChiplexError(
                f"{path}: checkpoint '{what}' has {f.name} = {values[f.name]!r}, expected "
                f"{_EXPECTED.get(str(f.type), f.type)}"
                f"{' >= 1' if str(f.type) == 'int' and f.name not in _MAY_BE_ZERO else ''}"
            )
    try:
        config = cls(**values)
    except TypeError as err:
        raise ChiplexError(f"{path}: checkpoint '{what}' is invalid: {err}") from None
    if isinstance(config, PolicyConfig) and config.hidden % config.heads:
        raise ChiplexError(
            f"{path}: checkpoint 'policy' has hidden {config.hidden}, not a multiple of heads "
            f"{config.heads}"
        )
    return config


_MAY_BE_ZERO = {"gnn_layers", "attention_layers", "stages_per_sample"}
"""Integer settings for which 0 means something (no such layer; explore every op)."""
_EXPECTED = {"int": "an integer", "float": "a finite number", "bool": "true or false"}


def _valid_setting(kind: str, name: str, value: object) -> bool:
    """Whether a hand-edited header value has its field's type (so loading cannot fail deep in torch)."""
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        minimum = 0 if name in _MAY_BE_ZERO else 1
        return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "float":
        return number and math.isfinite(value)  # type: ignore[arg-type]
    if kind == "float | None":
        return value is None or (number and math.isfinite(value))  # type: ignore[arg-type]
    return True


def read_header(path: Path, raw: object) -> CheckpointHeader:
    if not isinstance(raw, dict) or not isinstance(raw.get("header"), str):
        raise ChiplexError(f"{path}: not a chiplex policy checkpoint (no header)")
    try:
        data = json.loads(raw["header"])
    except json.JSONDecodeError as err:
        raise ChiplexError(f"{path}: checkpoint header is not valid JSON: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ChiplexError(f"{path}: not a chiplex policy checkpoint (format {found!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise ChiplexError(
            f"{path}: checkpoint format version {data.get('format_version')}, this chiplex reads "
            f"{FORMAT_VERSION}"
        )
    if data.get("feature_version") != FEATURE_VERSION:
        raise ChiplexError(
            f"{path}: checkpoint was trained on feature version {data.get('feature_version')}, "
            f"this chiplex computes feature version {FEATURE_VERSION}"
        )
    trained_on = data.get("trained_on") or []
    if not isinstance(trained_on, list) or not all(isinstance(run, dict) for run in trained_on):
        raise ChiplexError(f"{path}: checkpoint 'trained_on' is not a list of training runs")
    return CheckpointHeader(
        policy=_config(PolicyConfig, data.get("policy"), path, "policy"),
        ppo=_config(PPOConfig, data.get("ppo"), path, "ppo"),
        trained_on=list(trained_on),
        created_by=str(data.get("created_by", "")),
        feature_version=FEATURE_VERSION,
    )


def check_checkpoint_path(path: Path) -> None:
    """A missing file or a directory (a `chiplex train` run directory, say) as one clear line."""
    if path.is_dir():
        hint = (
            f": its checkpoint is {path / 'checkpoint.pt'}"
            if (path / "checkpoint.pt").is_file()
            else ""
        )
        raise ChiplexError(f"{path}: is a directory, not a checkpoint file{hint}")
    if not path.is_file():
        raise ChiplexError(f"{path}: checkpoint not found")


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    check_checkpoint_path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated/corrupt files raise many types
        text = str(err).strip()
        reason = text.splitlines()[0].split(". ")[0] if text else type(err).__name__
        raise ChiplexError(
            f"{path}: cannot read checkpoint (truncated or not a torch file): {reason}"
        ) from None
    header = read_header(path, raw)
    state = raw.get("state_dict")
    if not isinstance(state, dict):
        raise ChiplexError(f"{path}: checkpoint has no state_dict")
    policy = PlacementPolicy(header.policy)
    expected = policy.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        names = ", ".join((missing or extra)[:3])
        raise ChiplexError(
            f"{path}: checkpoint weights do not match the policy: "
            f"{'missing' if missing else 'unexpected'} {names}"
        )
    for name, tensor in expected.items():
        got = state[name]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ChiplexError(
                f"{path}: checkpoint weight {name} has shape {shape}, the policy (hidden "
                f"{header.policy.hidden}) needs {tuple(tensor.shape)}"
            )
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ChiplexError(f"{path}: checkpoint weight {name} holds NaN or infinite values")
    policy.load_state_dict(state)
    trainer = raw.get("trainer")
    return Checkpoint(header, policy, trainer if isinstance(trainer, dict) else None)
