"""Mistakes a user makes writing `nn` IR by hand: each is a located error, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_parse_errors import error_of as parse_error_of

from chiplex.cli import main
from chiplex.errors import ChiplexError
from chiplex.ir.parse import load_module, parse_module
from chiplex.opt import main as opt_main

MLP = Path(__file__).resolve().parents[1] / "examples" / "models" / "mlp.mlir"

RELU = """\
func.func @f(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %y = nn.relu %x : tensor<8x64xf32>
  func.return %y : tensor<8x64xf32>
}
"""


def error_of(text: str, filename: str = "m.mlir") -> str:
    return parse_error_of(text, filename)


@pytest.mark.parametrize("element", ["i3", "complex<f32>", "f8E4M3FN"])
def test_element_type_without_a_size_is_located(element: str) -> None:
    # Before: verified, then an internal error (exit 4) when the cost model asked for its bytes.
    message = error_of(RELU.replace("xf32>", f"x{element}>"))
    assert message.startswith(
        f"m.mlir:2:3: error: nn.relu: input tensor<8x64x{element}> has element type {element}, "
        "which chiplex has no size for: use one of i1, i8, i16, i32, i64, index, f16, bf16, f32, f64"
    )


def test_zero_dimension_is_located() -> None:
    message = error_of(RELU.replace("8x64", "8x0"))
    assert message.startswith(
        "m.mlir:2:3: error: nn.relu: input tensor<8x0xf32> has a zero dimension: "
        "nn tensors need at least one element"
    )


def test_function_signature_is_checked_where_no_nn_op_reads_it() -> None:
    # %u is only returned: no nn op verifies it, so the signature check must.
    text = """\
func.func @f(%x: tensor<8x64xf32>, %u: tensor<3xi3>) -> (tensor<8x64xf32>, tensor<3xi3>) {
  %y = nn.relu %x : tensor<8x64xf32>
  func.return %y, %u : tensor<8x64xf32>, tensor<3xi3>
}
"""
    message = error_of(text)
    assert message.startswith(
        "m.mlir:1:36: error: func.func @f: argument %u tensor<3xi3> has element type i3"
    )
    assert message.splitlines()[2] == " " * 35 + "^^"
    empty_result = text.replace("tensor<3xi3>", "tensor<0x3xf32>")
    assert error_of(empty_result).startswith(
        "m.mlir:1:36: error: func.func @f: argument %u tensor<0x3xf32> has a zero dimension"
    )


def test_function_type_in_custom_form_says_what_is_expected() -> None:
    # Before: "Expected ','" at the end of the line (binary) or "Unexpected attribute (...) -> ..."
    # at the op (unary), with no word about the form nn ops take.
    text = RELU.replace(
        "nn.relu %x : tensor<8x64xf32>",
        "nn.add %x, %x : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>",
    )
    lines = error_of(text).splitlines()
    assert lines[0].startswith(
        "m.mlir:2:24: error: nn.add: expected the types without parentheses, not a function type"
    )
    assert lines[2] == " " * 23 + "^"
    assert lines[3] == (
        "note: nn.add is written: nn.add %lhs, %rhs : <lhs type>, <rhs type> -> <result type>"
    )
    unary = RELU.replace("%x : tensor<8x64xf32>", "%x : (tensor<8x64xf32>) -> tensor<8x64xf32>")
    lines = error_of(unary).splitlines()
    assert lines[0].startswith(
        "m.mlir:2:21: error: nn.relu: expected the types without parentheses"
    )
    assert lines[3] == "note: nn.relu is written: nn.relu %input : <input type>"


def test_generic_form_with_a_function_type_still_parses() -> None:
    text = RELU.replace(
        "nn.relu %x : tensor<8x64xf32>", '"nn.relu"(%x) : (tensor<8x64xf32>) -> tensor<8x64xf32>'
    )
    assert "nn.relu %x : tensor<8x64xf32>" in str(parse_module(text, "m.mlir"))


def test_too_few_types_point_at_the_op_not_the_next_line() -> None:
    # Before: "m.mlir:3:3: error: Expected ','" under the func.return of the next line.
    text = RELU.replace("nn.relu %x : tensor<8x64xf32>", "nn.add %x, %x : tensor<8x64xf32>")
    lines = error_of(text).splitlines()
    assert lines[0] == "m.mlir:2:40: error: Expected ','"
    assert lines[1] == "  %y = nn.add %x, %x : tensor<8x64xf32>"
    assert lines[3].startswith("note: nn.add is written: nn.add %lhs, %rhs : ")


@pytest.mark.parametrize(
    ("wrong", "note"),
    [
        ("nn.softmax %x axsi = -1 :", "nn.softmax %input axis = <axis> : <input type>"),
        (
            "nn.reduce_sum %x axes = [0] keepdim :",
            "nn.reduce_sum %input axes = <axes> [keepdims] : <input type> -> <result type>",
        ),
        ("nn.relu %x : tensr<8x64xf32>", "nn.relu %input : <input type>"),
    ],
)
def test_syntax_error_in_an_nn_op_notes_its_form(wrong: str, note: str) -> None:
    text = RELU.replace("nn.relu %x : tensor<8x64xf32>", wrong)
    message = error_of(text)
    assert message.startswith("m.mlir:2:")
    assert message.splitlines()[-1] == f"note: {note.split()[0]} is written: {note}"


@pytest.mark.parametrize(
    "command",
    [
        ["search", str(MLP), "--target", "tpu-ring8", "--budget", "2"],
        ["import-torch", "mlp"],
    ],
)
def test_an_ir_output_not_named_mlir_is_refused(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: `search -o x.json` wrote MLIR text into x.json (exit 0).
    out = tmp_path / "x.json"
    assert main([*command, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"-o {out}: the output is MLIR text (" in err
    assert f"name the file with .mlir, e.g. -o {tmp_path / 'x.mlir'}" in err
    assert not out.exists()
    bare = tmp_path / "placed"  # no suffix claims no format
    assert main([*command, "-o", str(bare)]) == 0 and "func.func" in bare.read_text()


def test_chiplex_opt_refuses_an_output_not_named_mlir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lowered.json"
    assert opt_main([str(MLP), "-p", "canonicalize", "-o", str(out)]) == 1
    assert "the output is MLIR text (the module after the passes)" in capsys.readouterr().err
    assert not out.exists()
    assert opt_main([str(MLP), "-p", "canonicalize", "-o", str(tmp_path / "lowered.mlir")]) == 0


def test_compile_refuses_an_output_directory_named_like_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: `compile -o x.json` created a directory x.json holding placed.mlir etc.
    out = tmp_path / "x.json"
    assert main(["compile", str(MLP), "--target", "tpu-ring8", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"-o {out}: -o names a directory (it receives placed.mlir, chiplets.mlir," in err
    assert f"give a directory, e.g. -o {tmp_path / 'x'}" in err
    assert not out.exists()


def test_non_utf8_file_is_located_at_the_bad_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "cannot read file: 'utf-8' codec can't decode byte 0xe9 in position 65: ..."
    bad = tmp_path / "latin1.mlir"
    bad.write_bytes(RELU.replace("%y = ", "// café\n  %y = ").encode("latin-1"))
    with pytest.raises(ChiplexError) as info:
        load_module(bad)
    assert str(info.value) == (
        f"{bad}:2:9: error: not UTF-8: byte 0xe9 cannot be decoded "
        "(IR files are UTF-8; save the file as UTF-8)"
    )
    assert opt_main([str(bad)]) == 1
    assert f"{bad}:2:9: error: not UTF-8" in capsys.readouterr().err


def test_a_directory_is_not_an_ir_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "model.mlir"
    folder.mkdir()
    with pytest.raises(ChiplexError, match=r"model.mlir: error: is a directory, not an IR file$"):
        load_module(folder)
    assert opt_main([str(folder)]) == 1
    assert "is a directory, not an IR file" in capsys.readouterr().err


def test_missing_return_says_so() -> None:
    # Before: "nn.relu: Operation nn.relu terminates block in single-block region but is not a
    # terminator".
    message = error_of(RELU.replace("  func.return %y : tensor<8x64xf32>\n", ""))
    assert message.startswith(
        "m.mlir:2:3: error: func.func @f: missing func.return: the body ends with this nn.relu; "
        "a function ends with `func.return %value, ... : type, ...`"
    )
    empty = "func.func @f(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {\n}\n"
    assert error_of(empty).startswith(
        "m.mlir:1:1: error: func.func @f: empty body: it must end with `func.return`"
    )
    # A return that is not last keeps xDSL's own (clear) message.
    early = RELU.replace("  %y = nn.relu %x : tensor<8x64xf32>\n", "").replace(
        "tensor<8x64xf32>\n}", "tensor<8x64xf32>\n  %y = nn.relu %x : tensor<8x64xf32>\n}"
    )
    assert "'func.return' must be the last operation in its parent block" in error_of(early)


def test_a_chip_attribute_of_another_kind_is_an_error() -> None:
    # Before: `{mcm.chip = 3}` parsed, read as "unplaced" and silently replaced by the placer.
    message = error_of(RELU.replace("nn.relu %x :", "nn.relu %x {mcm.chip = 3} :"))
    assert message.startswith(
        "m.mlir:2:3: error: nn.relu: mcm.chip must be a #mcm.chip<N> (N >= 0), got 3 : i64"
    )
    # Before: "Expected integer literal" under the minus sign.
    negative = error_of(RELU.replace("nn.relu %x :", "nn.relu %x {mcm.chip = #mcm.chip<-1>} :"))
    assert negative.startswith("m.mlir:2:41: error: #mcm.chip id must be >= 0, got -1")
    placed = parse_module(RELU.replace("nn.relu %x :", "nn.relu %x {mcm.chip = #mcm.chip<2>} :"))
    assert "#mcm.chip<2>" in str(placed)


BACKWARDS = """\
func.func @f(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %a = nn.relu %x {mcm.chip = #mcm.chip<1>} : tensor<8x64xf32>
  %b_2 = nn.neg %a {mcm.chip = #mcm.chip<0>} : tensor<8x64xf32>
  %c = nn.exp %b_2 {mcm.chip = #mcm.chip<1>} : tensor<8x64xf32>
  func.return %c : tensor<8x64xf32>
}
"""


def test_placement_violations_of_a_file_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "  [acyclic-dataflow] edge %a -> %b flows ..." with no place, and `%b_2` prints as
    # `%b` (xDSL drops a `_N` suffix), so the name alone may not find the op.
    placed = tmp_path / "placed.mlir"
    placed.write_text(BACKWARDS)
    assert main(["check", str(placed), "--target", "tpu-ring8"]) == 1
    located = (
        f"  {placed}:3:3: [acyclic-dataflow] edge %a -> %b flows backwards from chip 1 to chip 0"
    )
    assert located in capsys.readouterr().out.splitlines()
    # After a pass that rewrites the module (canonicalize), the parsed ops keep their positions.
    pipeline = "canonicalize,annotate-costs{target=tpu-ring8},legalize-placement"
    assert opt_main([str(placed), "-p", pipeline]) == 1
    assert located in capsys.readouterr().err.splitlines()


def test_a_missing_closing_brace_says_so() -> None:
    # Before: "m.mlir:4:1: error: in block definition".
    message = error_of(RELU.removesuffix("}\n"))
    assert message.startswith("m.mlir:4:1: error: unexpected end of file: a closing '}' is missing")
    stray = error_of(RELU.replace("  func.return", "  123\n  func.return"))
    assert stray.startswith("m.mlir:3:3: error: expected an operation or '}' here\n  123\n  ^^^")


def test_a_huge_dimension_is_a_located_verifier_error() -> None:
    # Before: reported by the graph view without the source line ("m.mlir:2:3: nn.relu: ...").
    message = error_of(RELU.replace("8x64", "4294967296x4294967296x64"))
    assert message.startswith(
        "m.mlir:2:3: error: nn.relu: input tensor<4294967296x4294967296x64xf32> holds 4.72e+21 "
        "bytes, more than the 1 PiB chiplex accepts (a typo in a dimension?)\n"
        "  %y = nn.relu %x : tensor<4294967296x4294967296x64xf32>\n  ^"
    )


def test_checking_the_split_output_says_what_to_give_instead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "chiplets.mlir:1:1: expected exactly one func.func in the module, found 0".
    out = tmp_path / "out"
    assert main(["compile", str(MLP), "--target", "tpu-ring8", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["check", str(out / "chiplets.mlir"), "--target", "tpu-ring8"]) == 1
    assert (
        f"{out / 'chiplets.mlir'}:2:3: expected exactly one func.func in the module, found 0 (it "
        "holds an mcm.program, the output of split-chiplets: give the function before the split"
    ) in capsys.readouterr().err


def test_a_hash_comment_says_how_comments_are_written() -> None:
    # Before: "Expected suffix identifier after {first_char}" (xDSL's unfilled message).
    message = error_of("# my model\n" + RELU)
    assert message.startswith(
        "m.mlir:1:1: error: expected a name after '#' (comments start with //; "
        "'#' starts an attribute such as #mcm.chip<0>)"
    )
    assert error_of(RELU.replace("nn.relu %x", "nn.relu %")).startswith(
        "m.mlir:2:16: error: expected a name after '%'\n"
    )


def test_a_float_constant_too_large_for_f16_is_a_located_error() -> None:
    # Before: "float too large to pack with e format" (struct's words) after the type.
    text = RELU.replace(
        "%y = nn.relu %x : tensor<8x64xf32>",
        "%c = nn.constant 1.0e10 : tensor<f16>\n  %y = nn.relu %x : tensor<8x64xf32>",
    )
    assert error_of(text).startswith(
        "m.mlir:2:20: error: nn.constant: 10000000000.0 is out of range for f16"
    )


def test_one_param_name_with_two_shapes_is_an_error() -> None:
    # Before: accepted; only `compile --check-semantics` failed, without a location.
    text = """\
func.func @f(%x: tensor<8x8xf32>) -> tensor<8x8xf32> {
  %w = nn.param "w" : tensor<8x8xf32>
  %y = nn.matmul %x, %w : tensor<8x8xf32>, tensor<8x8xf32> -> tensor<8x8xf32>
  %w2 = nn.param "w" : tensor<8xf32>
  %z = nn.add %y, %w2 : tensor<8x8xf32>, tensor<8xf32> -> tensor<8x8xf32>
  func.return %z : tensor<8x8xf32>
}
"""
    assert error_of(text).startswith(
        'm.mlir:4:3: error: nn.param "w": declared tensor<8xf32> here but tensor<8x8xf32> at '
        "m.mlir:2:3; params of one name are one tensor (rename one of them)"
    )
    # The same weight seen through a view (a tied, transposed embedding) is not a conflict.
    tied = text.replace(
        '  %w2 = nn.param "w" : tensor<8xf32>\n  %z = nn.add %y, %w2 : tensor<8x8xf32>, tensor<8xf32>',
        '  %w2 = nn.param "w" {torch_view = "reshape(64)"} : tensor<64xf32>\n'
        "  %r = nn.reshape %w2 : tensor<64xf32> -> tensor<8x8xf32>\n"
        "  %z = nn.add %y, %r : tensor<8x8xf32>, tensor<8x8xf32>",
    )
    assert 'torch_view = "reshape(64)"' in str(parse_module(tied, "m.mlir"))


def test_text_after_a_complete_op_is_blamed_on_that_op() -> None:
    # Before: "in block definition" under the `->` (xDSL wanted a block label there).
    text = RELU.replace(
        "nn.relu %x : tensor<8x64xf32>",
        "nn.softmax %x axis = -1 : tensor<8x64xf32> -> tensor<8x64xf32>",
    )
    lines = error_of(text).splitlines()
    assert lines[0] == "m.mlir:2:51: error: unexpected text after the end of this nn.softmax"
    assert lines[2] == " " * 50 + "^^"
    assert lines[3] == "note: nn.softmax is written: nn.softmax %input axis = <axis> : <input type>"


def test_chiplex_opt_output_reparses_to_the_same_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Hand-written names (`%h_2`, `%0`), escapes and constants survive print -> parse -> print,
    # also through the whole lowering to an mcm.program.
    source = tmp_path / "names.mlir"
    source.write_text(
        """\
func.func @f(%x_1: tensor<4x8xf32>, %0: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x10xf32>) {
  %h_1 = nn.relu %x_1 : tensor<4x8xf32>
  %h_2 = nn.neg %0 : tensor<4x8xf32>
  %1 = nn.add %h_1, %h_2 : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  %c = nn.constant 1.0e-7 : tensor<f32>
  %w = nn.param "we\\"ird\\\\name\\n" : tensor<8x8xf32>
  %m = nn.matmul %1, %w : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %d = nn.mul %m, %c : tensor<4x8xf32>, tensor<f32> -> tensor<4x8xf32>
  %p = nn.pad %d low = [0, 1] high = [0, 1] value = 0.1 : tensor<4x8xf32> -> tensor<4x10xf32>
  func.return %d, %p : tensor<4x8xf32>, tensor<4x10xf32>
}
"""
    )
    pipeline = (
        "annotate-costs{target=tpu-ring8},place,legalize-placement,insert-transfers,split-chiplets"
    )
    for passes, out in [
        ([], tmp_path / "printed.mlir"),
        (["-p", pipeline], tmp_path / "split.mlir"),
    ]:
        assert opt_main([str(source), *passes, "-o", str(out)]) == 0, capsys.readouterr().err
        printed = out.read_text()
        again = tmp_path / "again.mlir"
        assert opt_main([str(out), "-o", str(again), "--force"]) == 0
        assert again.read_text() == printed
        assert parse_module(printed).is_structurally_equivalent(parse_module(again.read_text()))
