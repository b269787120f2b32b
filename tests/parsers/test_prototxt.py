"""The text-format reader: exact values, line numbers, comments, and messy input that must not raise."""

import math

import pytest

from parsers.prototxt import Message, parse_prototxt
from parsers.source import ParseError

SOLVER = """\
net: "train_val.prototxt"
test_iter: 736
# make test net, but don't invoke it from the solver itself
test_interval: 999999999
# lr for unnormalized softmax
base_lr: 1e-10
lr_policy: "fixed"
# high momentum
momentum: 0.99
max_iter: 100000
# no gradient accumulation
iter_size: 1
test_initialization: false
"""


def test_scalars_types_raw_text_and_lines():
    msg = parse_prototxt(SOLVER)
    assert msg.get("net") == "train_val.prototxt"
    assert msg.get_float("base_lr") == 1e-10 and msg.find("base_lr").raw == "1e-10"
    assert msg.line_of("base_lr") == 6 and msg.line_text(6) == "base_lr: 1e-10"
    assert msg.get_int("test_interval") == 999999999
    assert msg.get("test_initialization") is False and msg.get_bool("test_initialization") is False
    assert msg.get_str("lr_policy") == "fixed" and msg.get_str("max_iter") == "100000"
    assert msg.get("missing", 7) == 7 and msg.get_float("missing") is None and msg.line_of("missing") is None
    assert msg.problems == []


def test_crlf_lines_are_quoted_without_carriage_return():
    msg = parse_prototxt("base_lr: 0.01\r\nmomentum: 0.9 # m\r\n")
    assert msg.get_float("momentum") == 0.9 and msg.line_text(2) == "momentum: 0.9 # m"
    assert msg.comments == [(2, "m")]


def test_every_comment_is_kept_with_its_line():
    msg = parse_prototxt(SOLVER)
    assert msg.comments == [
        (3, "make test net, but don't invoke it from the solver itself"),
        (5, "lr for unnormalized softmax"),
        (8, "high momentum"),
        (11, "no gradient accumulation"),
    ]


def test_trailing_comment_and_first_line_offset():
    msg = parse_prototxt("momentum: 0.99\nbase_lr: 1e-4  # lr for unnormalized softmax\n", first_line=41)
    assert msg.line_of("base_lr") == 42
    assert msg.comments == [(42, "lr for unnormalized softmax")]
    assert msg.line_text(42) == "base_lr: 1e-4  # lr for unnormalized softmax"
    assert msg.line_text(40) == "" and msg.line_text(99) == ""


def test_nested_messages_all_bracket_styles_and_repeated_keys():
    text = """\
layer {
  name: "conv1"
  type: "Convolution"
  param { lr_mult: 1 decay_mult: 1 }
  param: { lr_mult: 2; decay_mult: 0 }
  convolution_param <
    num_output: 96
    weight_filler { type: "gaussian" std: 0.01 }
  >
}
layer { name: "relu1" type: "ReLU" }
"""
    msg = parse_prototxt(text)
    layers = msg.messages("layer")
    assert [layer.get("name") for layer in layers] == ["conv1", "relu1"]
    conv = layers[0]
    assert [p.get_float("lr_mult") for p in conv.messages("param")] == [1.0, 2.0]
    assert conv.messages("param")[1].get_float("decay_mult") == 0.0
    filler = conv.messages("convolution_param")[0].messages("weight_filler")[0]
    assert filler.get("type") == "gaussian" and filler.get_float("std") == 0.01
    assert conv.messages("convolution_param")[0].get_int("num_output") == 96
    assert filler.line_of("std") == 8 and conv.line_of("convolution_param") == 6
    assert msg.messages("layer")[1].line_of("name") == 11


def test_lists_and_enums_and_special_numbers():
    msg = parse_prototxt(
        "stepvalue: [32000, 48000]\nphase: TRAIN\npool: MAX\nclip: -inf\nx: nan\ny: inf\n"
        "z: -1.5E+3\nw: .5\nv: 3f\nh: 0x10\nb: True\n"
    )
    assert msg.get_all("stepvalue") == [32000.0, 48000.0]
    assert msg.get("phase") == "TRAIN" and msg.get("pool") == "MAX"
    assert msg.get("clip") == -math.inf and math.isnan(msg.get("x")) and msg.get("y") == math.inf
    assert msg.get("z") == -1500.0 and msg.get("w") == 0.5 and msg.get("v") == 3.0 and msg.get("h") == 16.0
    assert msg.get("b") is True
    assert msg.get_int("y") is None


def test_strings_quotes_escapes_and_hashes_inside():
    msg = parse_prototxt(
        "a: 'single \\'quoted\\''\nb: \"tab\\there\"\nc: \"#not a comment\"  # a comment\n"
        'd: "\\344\\270\\255\\346\\226\\207"\ne: "con" "cat"\n'
    )
    assert msg.get("a") == "single 'quoted'"
    assert msg.get("b") == "tab\there"
    assert msg.get("c") == "#not a comment" and msg.comments == [(3, "a comment")]
    assert msg.get("d") == "中文"
    assert msg.get("e") == "concat"


def test_truncated_text_returns_what_was_read():
    text = 'name: "VGG"\nlayer {\n  name: "conv1"\n  convolution_param {\n    num_output: 64\n    weight_fi'
    msg = parse_prototxt(text)
    conv = msg.messages("layer")[0]
    assert conv.get("name") == "conv1"
    assert conv.messages("convolution_param")[0].get_int("num_output") == 64
    assert (4, "the text ends inside 'convolution_param {' opened at line 4") in msg.problems
    assert (2, "the text ends inside 'layer {' opened at line 2") in msg.problems


def test_unterminated_string_at_the_cut():
    msg = parse_prototxt('source: "/data/imagenet/train_lm')
    assert msg.get("source") == "/data/imagenet/train_lm"


def test_junk_is_skipped_and_reported():
    text = "}\nbase_lr: 0.01\n@@@ 12 =\nmomentum:\nmax_iter: 450000\nlr_policy: \n}\n"
    msg = parse_prototxt(text)
    assert msg.get_float("base_lr") == 0.01 and msg.get_int("max_iter") == 450000
    assert msg.find("momentum") is None and msg.find("lr_policy") is None
    lines = sorted({line for line, _ in msg.problems})
    assert lines == [1, 3, 4, 6, 7]


def test_nothing_recognisable_raises():
    for text in ("", "   \n# only a comment\n", "}}} ::: 12"):
        with pytest.raises(ParseError):
            parse_prototxt(text)


def test_message_helpers_on_hand_built_message():
    msg = Message(fields=[])
    assert msg.get("x") is None and msg.messages("layer") == [] and msg.line_text(1) == ""


def test_twenty_thousand_lines_parse_whole():
    block = (
        'layer {{\n  name: "res{0}_branch2a"\n  type: "Convolution"\n  bottom: "res{0}"\n'
        '  top: "res{0}_branch2a"\n  param {{\n    lr_mult: 1\n    decay_mult: 1\n  }}\n'
        "  convolution_param {{\n    num_output: 256\n    bias_term: false\n    kernel_size: 3\n"
        '    weight_filler {{\n      type: "msra"\n    }}\n  }}\n}}\n'
        'layer {{\n  name: "bn{0}"\n  type: "BatchNorm"\n  batch_norm_param {{\n'
        "    use_global_stats: true  # frozen\n  }}\n}}\n"
    )
    text = "".join(block.format(i) for i in range(800))
    assert text.count("\n") == 20000
    msg = parse_prototxt(text)
    assert len(msg.messages("layer")) == 1600 and len(msg.comments) == 800
    assert msg.messages("layer")[-1].line_of("name") == 19995
