"""Incremental detokenizing and stop strings with a real byte-level BPE tokenizer."""

from __future__ import annotations

import pytest

from npu_fleet_server.detokenizer import IncrementalDetokenizer
from npu_fleet_server.stop_strings import StopStringMatcher
from tiny_models import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return build_tokenizer(str(tmp_path_factory.mktemp("tokenizer")))


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii words, with punctuation!",
        "multi-byte: h\u00e9llo \u65e5\u672c\u8a9e \U0001f600 done",
        "  leading spaces and\nnew lines\n",
    ],
)
def test_one_token_at_a_time_gives_the_same_text_as_decoding_all(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    detok = IncrementalDetokenizer(tokenizer)
    deltas = [detok.add([token]) for token in ids] + [detok.flush()]
    assert "".join(deltas) == tokenizer.decode(ids) == text
    assert not any("\ufffd" in delta for delta in deltas), "a split UTF-8 character leaked out"


def test_an_incomplete_character_at_the_end_is_flushed(tokenizer):
    ids = tokenizer("\u65e5", add_special_tokens=False)["input_ids"]
    assert len(ids) > 1  # byte-level: one CJK character is several byte tokens
    detok = IncrementalDetokenizer(tokenizer)
    assert detok.add(ids[:-1]) == ""
    assert detok.flush() == tokenizer.decode(ids[:-1])


def test_invalid_bytes_are_not_held_for_ever(tokenizer):
    continuation = tokenizer.convert_tokens_to_ids(["\u0122"])[0]  # byte 0x80 in the byte-level alphabet, alone invalid
    detok = IncrementalDetokenizer(tokenizer)
    deltas = [detok.add([continuation]) for _index in range(8)]
    assert deltas == ["", "", "", "\ufffd" * 4, "", "", "", "\ufffd" * 4]


def test_stop_string_split_across_deltas_is_caught_and_not_sent():
    matcher = StopStringMatcher(["<END>"])
    sent = [matcher.feed(part) for part in ["hello <", "E", "N", "D> tail"]]
    assert "".join(sent) == "hello "
    assert matcher.matched == "<END>" and matcher.flush() == ""


def test_a_false_start_is_released():
    matcher = StopStringMatcher(["<END>"])
    assert matcher.feed("a <E") == "a "
    assert matcher.feed("X") == "<EX"
    assert matcher.flush() == "" and matcher.matched is None


def test_the_earliest_stop_string_wins():
    matcher = StopStringMatcher(["world", "lo w"])
    assert matcher.feed("hello world") == "hel" and matcher.matched == "lo w"


def test_held_text_is_sent_at_the_end_when_no_stop_completes():
    matcher = StopStringMatcher(["###"])
    assert matcher.feed("x ##") == "x "
    assert matcher.flush() == "##"


def test_no_stop_strings_pass_everything():
    matcher = StopStringMatcher([])
    assert matcher.feed("abc") == "abc" and matcher.flush() == ""
