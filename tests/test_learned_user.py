"""The learned placer as a user drives it: what `finetune`, `search`, `compile` and `train` say and
write when given a directory, a non-terminal stderr, or a finished run."""

from __future__ import annotations

from pathlib import Path

import pytest

from chiplex.cli import main

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"


def test_finetune_into_a_directory_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: with --force it trained for the whole budget, then failed on a temporary file's name.
    out = tmp_path / "runs"
    out.mkdir()
    args = [
        "finetune",
        str(MLP),
        "--budget",
        "4",
        "--workers",
        "1",
        "--no-progress",
        "-o",
        str(out),
    ]
    assert main([*args, "--force"]) == 1
    captured = capsys.readouterr()
    assert f"cannot write {out}: it is a directory" in captured.err
    assert "fine-tuning on" not in captured.err  # nothing was trained
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command", ["search", "finetune", "compile"])
def test_directory_as_checkpoint_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    extra = {
        "search": ["--strategy", "learned", "--budget", "4"],
        "finetune": ["-o", str(tmp_path / "o.pt"), "--budget", "4"],
        "compile": ["--strategy", "learned", "-o", str(tmp_path / "out")],
    }[command]
    assert main([command, str(MLP), *extra, "--checkpoint", str(run)]) == 1
    err = capsys.readouterr().err.strip()
    # One line, naming what is wrong and (a `chiplex train` run directory) the file meant.
    assert err == (
        f"chiplex: error: {run}: is a directory, not a checkpoint file: its checkpoint is "
        f"{run / 'checkpoint.pt'}"
    )


TRAIN = [
    "train",
    "--updates",
    "2",
    "--checkpoint-every",
    "1",
    "--graphs",
    "1",
    "--targets-per-graph",
    "1",
    "--no-zoo",
    "--samples",
    "2",
    "--hidden",
    "16",
    "--executor",
    "serial",
]


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: piped to a log file, stderr held every redraw of the tqdm bars, joined by \r.
    out = tmp_path / "p.pt"
    finetune = ["finetune", str(MLP), "--budget", "4", "--workers", "1", "--full-budget"]
    assert main([*finetune, "--from-scratch", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "eval/s" not in err
    assert "fine-tuning on mlp" in err and "done in" in err  # the one-line messages stay
    assert main([*TRAIN, "-o", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "update/s" not in err
    assert "resuming" not in err and "2 updates of 2 samples" in err


def test_resumed_run_records_what_an_uninterrupted_run_records(tmp_path: Path) -> None:
    # Before: a resumed run judged the anchors of the problems it had visited again and counted them
    # twice, so its history and its checkpoint's evaluation count differed from an uninterrupted run's.
    import json

    from chiplex.learned import load_checkpoint

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    six = [*TRAIN, "--no-progress"]
    six[six.index("--updates") + 1] = "6"
    assert main([*six, "-o", str(straight)]) == 0
    assert main([*TRAIN, "--no-progress", "-o", str(resumed)]) == 0  # 2 updates, then 4 more
    assert main([*six, "-o", str(resumed)]) == 0
    history = json.loads((straight / "history.json").read_text())
    problems = [entry["problem"] for entry in history]
    assert set(problems[2:]) & set(problems[:2])  # after the resume a problem is visited again
    assert json.loads((resumed / "history.json").read_text()) == history
    header = load_checkpoint(resumed / "checkpoint.pt").header
    assert header.trained_on == load_checkpoint(straight / "checkpoint.pt").header.trained_on


def test_train_run_files_are_ordinary_files_and_a_finished_run_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import stat

    # Before: history.json, pretrain.json and learning_curve.png were left 0600 (mkstemp's mode), and
    # re-running a finished run printed "trained 2 updates ..." as if it had just trained them.
    run = tmp_path / "run"
    umask = os.umask(0o022)
    try:
        assert main([*TRAIN, "--no-progress", "-o", str(run)]) == 0
    finally:
        os.umask(umask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run.iterdir()}
    assert modes == dict.fromkeys(
        ["checkpoint.pt", "history.json", "pretrain.json", "learning_curve.png"], 0o644
    )
    capsys.readouterr()
    before = (run / "checkpoint.pt").read_bytes()
    assert main([*TRAIN, "--no-progress", "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{run} already holds 2 updates (--updates 2): nothing to train")
    assert (run / "checkpoint.pt").read_bytes() == before


def test_train_output_named_like_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: `chiplex train -o policy.pt` made a directory policy.pt holding the run.
    assert main([*TRAIN, "--no-progress", "-o", str(tmp_path / "policy.pt")]) == 1
    assert "looks like a file name: give a directory" in capsys.readouterr().err
    assert not (tmp_path / "policy.pt").exists()


def test_resume_may_change_how_often_it_saves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "holds a run with other settings (checkpoint_every 1 -> 2)", although how often a run
    # saves changes none of its updates.
    import json

    run, straight = tmp_path / "run", tmp_path / "straight"
    assert main([*TRAIN, "--no-progress", "-o", str(run)]) == 0
    four = [*TRAIN, "--no-progress"]
    four[four.index("--updates") + 1] = "4"
    assert main([*four, "-o", str(straight)]) == 0
    four[four.index("--checkpoint-every") + 1] = "2"
    assert main([*four, "-o", str(run)]) == 0
    assert "resuming" in capsys.readouterr().err
    assert (run / "history.json").read_text() == (straight / "history.json").read_text()
    assert json.loads((run / "pretrain.json").read_text())["checkpoint_every"] == 2
    changed = [*four]
    changed[changed.index("--samples") + 1] = "3"  # a setting that changes the updates is refused
    assert main([*changed, "-o", str(run)]) == 1
    assert "other settings (samples_per_update 2 -> 3)" in capsys.readouterr().err


def test_finetuned_checkpoint_records_its_updates(tmp_path: Path) -> None:
    # Before: a fine-tune's `trained_on` entry said how many evaluations but not how many PPO updates
    # (0 when the search stopped at the upper bound), unlike `chiplex train`'s.
    from chiplex.learned import load_checkpoint

    out = tmp_path / "p.pt"
    args = ["finetune", str(MLP), "--budget", "20", "--workers", "1", "--no-progress"]
    assert main([*args, "--from-scratch", "--full-budget", "-o", str(out)]) == 0
    entry = load_checkpoint(out).header.trained_on[-1]
    assert entry["evaluations"] == 20 and entry["updates"] >= 1
    assert {"graph", "target", "ops", "chips", "seed"} <= set(entry)


def test_place_pass_negative_seed_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: `place{strategy=learned seed=-1}` ended in "chiplex: internal error: ValueError: expected
    # non-negative integer" (numpy's seed), exit 4.
    pipeline = (
        "annotate-costs{target=tpu-ring8},place{strategy=learned seed=-1},legalize-placement,"
        "insert-transfers,split-chiplets"
    )
    out = tmp_path / "out"
    assert main(["compile", str(MLP), "-o", str(out), "--pipeline", pipeline]) == 1
    assert capsys.readouterr().err.strip() == "chiplex: error: place: seed must be >= 0, got -1"
    assert not out.exists()


def test_finetune_says_when_it_did_not_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "wrote p.pt (policy trained on one / tpu-ring8)" although the search stopped at the
    # upper bound on its anchors and no PPO update ran.
    model = tmp_path / "one.mlir"
    model.write_text(
        "func.func @one(%x: tensor<4x64xbf16>) -> tensor<4x64xbf16> {\n"
        "  %y = nn.relu %x : tensor<4x64xbf16>\n"
        "  func.return %y : tensor<4x64xbf16>\n"
        "}\n"
    )
    out = tmp_path / "p.pt"
    args = ["finetune", str(model), "--budget", "20", "--workers", "1", "--no-progress"]
    assert main([*args, "--from-scratch", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out} (no PPO update: the search reached the upper bound" in text
    assert main([*args, "--from-scratch", "--full-budget", "-o", str(out), "--force"]) == 0
    assert f"wrote {out} (1 PPO update on one / tpu-ring8)" in capsys.readouterr().out


def test_output_under_a_file_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: `train -o file/run` trained, then failed at its first save ("Not a directory");
    # `finetune -o file/x.pt` said "directory file does not exist".
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    assert main([*TRAIN, "--no-progress", "-o", str(blocker / "run")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"chiplex: error: cannot create output directory {blocker / 'run'}: {blocker} is a file"
    )
    args = ["finetune", str(MLP), "--budget", "4", "--workers", "1", "--no-progress"]
    assert main([*args, "-o", str(blocker / "x.pt")]) == 1
    assert f"cannot write {blocker / 'x.pt'}: {blocker} is a file" in capsys.readouterr().err
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (None, "history.json: missing beside checkpoint.pt (at update 2); restore it"),
        ("[1, 2]", "history.json: not a pre-training history"),
        ('{"update": 1}', "history.json: not a pre-training history"),
        ("[]", "history.json: holds 0 updates, checkpoint.pt 2; restore it"),
    ],
)
def test_resume_with_a_broken_history_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], history: str | None, message: str
) -> None:
    # Before: a history of numbers was an internal error (TypeError), and a missing or short one
    # resumed with the evaluation count and learning curve restarted from nothing.
    run = tmp_path / "run"
    assert main([*TRAIN, "--no-progress", "-o", str(run)]) == 0
    if history is None:
        (run / "history.json").unlink()
    else:
        (run / "history.json").write_text(history)
    capsys.readouterr()
    more = [*TRAIN, "--no-progress", "-o", str(run)]
    more[more.index("--updates") + 1] = "3"
    assert main(more) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and message in err  # "building the corpus ..." and the error


def _edited_checkpoint(tmp_path: Path, edit: str) -> Path:
    import json

    import torch

    from chiplex.learned.checkpoint import CheckpointHeader, save_checkpoint
    from chiplex.learned.policy import PolicyConfig, new_policy
    from chiplex.learned.ppo import PPOConfig

    config = PolicyConfig(hidden=16, heads=2, segment=8)
    path = tmp_path / "edited.pt"
    save_checkpoint(path, new_policy(config, seed=0), CheckpointHeader(config, PPOConfig()))
    raw = torch.load(path, weights_only=True)
    header = json.loads(raw["header"])
    if edit == "trained_on":
        header["trained_on"] = 5
    elif edit == "hidden_text":
        header["policy"]["hidden"] = "x"
    elif edit == "hidden_negative":
        header["policy"]["hidden"] = -4
    elif edit == "heads":
        header["policy"]["heads"] = 3
    elif edit == "samples":
        header["ppo"]["samples_per_update"] = 0
    elif edit == "learning_rate":
        header["ppo"]["learning_rate"] = "fast"
    elif edit == "header_not_a_table":
        header = 5
    elif edit == "nan":
        name = next(iter(raw["state_dict"]))
        raw["state_dict"][name] = torch.full_like(raw["state_dict"][name], float("nan"))
    raw["header"] = json.dumps(header)
    torch.save(raw, path)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("trained_on", "checkpoint 'trained_on' is not a list of training runs"),
        ("hidden_text", "checkpoint 'policy' has hidden = 'x', expected an integer >= 1"),
        ("hidden_negative", "checkpoint 'policy' has hidden = -4, expected an integer >= 1"),
        ("heads", "checkpoint 'policy' has hidden 16, not a multiple of heads 3"),
        ("samples", "checkpoint 'ppo' has samples_per_update = 0, expected an integer >= 1"),
        ("learning_rate", "checkpoint 'ppo' has learning_rate = 'fast', expected a finite number"),
        ("header_not_a_table", "not a chiplex policy checkpoint (format None)"),
        ("nan", "checkpoint weight encoder.embed.weight holds NaN or infinite values"),
    ],
)
def test_hand_edited_checkpoint_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, message: str
) -> None:
    # Before: each of these was "chiplex: internal error: TypeError / RuntimeError / IndexError /
    # ValueError ..." from deep in torch or PPO, exit 4.
    path = _edited_checkpoint(tmp_path, edit)
    args = ["search", str(MLP), "--strategy", "learned", "--budget", "60", "--workers", "1"]
    assert main([*args, "--full-budget", "--no-progress", "--checkpoint", str(path)]) == 1
    assert capsys.readouterr().err.strip() == f"chiplex: error: {path}: {message}"


def test_train_hidden_not_divisible_by_the_heads_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: `chiplex train --hidden 30` ended in "internal error: AssertionError: embed_dim must be
    # divisible by num_heads" from torch's attention.
    args = [*TRAIN, "--no-progress", "-o", str(tmp_path / "run")]
    args[args.index("--hidden") + 1] = "30"
    assert main(args) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "chiplex: error: pre-training hidden must be a multiple of the policy's 4 attention heads, "
            "got 30"
        )
    )
