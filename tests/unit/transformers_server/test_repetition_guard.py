"""RepetitionGuard on token sequences: exact trip points, what is released, what is dropped."""

from __future__ import annotations

import random

import pytest

from npu_fleet_server.guards import REPEATED_BLOCK, REPEATED_CHUNK, RepetitionGuard


def feed(guard, tokens):
    sent = []
    for token in tokens:
        sent.extend(guard.push(token))
        if guard.stop_reason:
            break
    else:
        sent.extend(guard.flush())
    return sent


def test_a_token_repeated_more_than_n_times_stops_after_the_first_copy():
    guard = RepetitionGuard(max_chunk_repeats=10)
    sent = feed(guard, [1, 2] + [7] * 50)
    assert guard.stop_reason == REPEATED_CHUNK and guard.stop_period == 1
    assert sent == [1, 2, 7]
    assert len(guard._tokens) == 2 + 11  # pylint: disable=protected-access  # stopped at the 11th copy


def test_ten_copies_in_a_row_are_still_allowed():
    guard = RepetitionGuard(max_chunk_repeats=10)
    sent = feed(guard, [7] * 10 + [8, 9])
    assert guard.stop_reason is None
    assert sent == [7] * 10 + [8, 9]


def test_a_short_chunk_repeated_counts_as_one_unit():
    guard = RepetitionGuard(max_chunk_repeats=10)
    sent = feed(guard, [5] + [1, 2, 3] * 20)
    assert guard.stop_reason == REPEATED_CHUNK and guard.stop_period == 3
    assert sent == [5, 1, 2, 3]


def test_a_long_block_seen_three_times_stops_with_one_copy_sent():
    block = list(range(100, 140))  # 40 tokens: layer 3
    guard = RepetitionGuard(block_min=16, block_max=256, block_count=3)
    sent = feed(guard, [1, 2, 3] + block * 5)
    assert guard.stop_reason == REPEATED_BLOCK and guard.stop_period == 40
    assert sent == [1, 2, 3] + block
    assert len(guard._tokens) == 3 + 3 * 40  # pylint: disable=protected-access


def test_a_block_seen_twice_is_released_when_the_text_moves_on():
    block = list(range(100, 130))
    guard = RepetitionGuard(block_count=3)
    tokens = block * 2 + [1, 2, 3]
    assert feed(guard, tokens) == tokens
    assert guard.stop_reason is None


def test_blocks_longer_than_block_max_are_not_tracked():
    block = list(range(1000, 1300))  # 300 > 256
    guard = RepetitionGuard(block_max=256)
    tokens = block * 3
    assert feed(guard, tokens) == tokens and guard.stop_reason is None


@pytest.mark.parametrize("chunks, count", [(0, 3), (10, 0)])
def test_each_layer_can_be_switched_off(chunks, count):
    guard = RepetitionGuard(max_chunk_repeats=chunks, block_count=count)
    loop = [9] * 40 if chunks == 0 else list(range(50, 70)) * 6
    assert feed(guard, loop) == loop and guard.stop_reason is None


def test_varied_text_is_never_stopped_and_never_held_for_long():
    rng = random.Random(1)
    tokens = [rng.randrange(5000) for _index in range(5000)]
    guard = RepetitionGuard()
    worst_hold = 0
    sent = []
    for token in tokens:
        sent.extend(guard.push(token))
        worst_hold = max(worst_hold, guard.held)
    sent.extend(guard.flush())
    assert sent == tokens and guard.stop_reason is None
    assert worst_hold <= 2


def test_the_first_token_is_released_at_once():
    guard = RepetitionGuard()
    assert guard.push(42) == [42]


def test_nothing_is_accepted_after_a_stop():
    guard = RepetitionGuard(max_chunk_repeats=2)
    feed(guard, [3, 3, 3])
    assert guard.stop_reason == REPEATED_CHUNK
    assert guard.push(4) == [] and guard.flush() == []


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        RepetitionGuard(block_min=20, block_max=10)


def test_a_switched_off_layer_holds_nothing_back():
    guard = RepetitionGuard(max_chunk_repeats=0, block_count=0)
    for token in [9] * 30:
        assert guard.push(token) == [token]
    chunks_only = RepetitionGuard(block_count=0)
    block = list(range(50, 70))
    released = []
    for token in block * 2:
        released.extend(chunks_only.push(token))
    assert released == block * 2


def reference_guard(tokens, max_chunk_repeats=10, block_min=16, block_max=256, block_count=3):
    """The guard's rules computed from scratch at every step (slow, obviously right)."""
    first = 1 if max_chunk_repeats else block_min
    last = block_max if block_count else block_min - 1
    released = 0
    for count in range(1, len(tokens) + 1):
        seq = tokens[:count]
        runs = {}
        for period in range(first, min(last, count - 1) + 1):
            run = 0
            while run < count - period and seq[count - 1 - run] == seq[count - 1 - run - period]:
                run += 1
            if run:
                runs[period] = run
        hold = max((run for run in runs.values()), default=0)
        tripped = [
            period
            for period, run in runs.items()
            if run >= (max_chunk_repeats * period if period < block_min else (block_count - 1) * period)
        ]
        if tripped:
            period = min(tripped)
            released = max(released, count - runs[period])
            return tokens[:released], (REPEATED_CHUNK if period < block_min else REPEATED_BLOCK), count
        released = max(released, count - hold)
    return tokens, None, len(tokens)


@pytest.mark.parametrize("seed", range(40))
def test_matches_the_from_scratch_rules_on_random_loops(seed):
    rng = random.Random(seed)
    tokens = []
    while len(tokens) < 400:
        choice = rng.random()
        if choice < 0.5:
            tokens.append(rng.randrange(30))
        elif choice < 0.8:
            tokens.extend([rng.randrange(30)] * rng.randint(2, 12))
        else:
            block = [rng.randrange(30) for _index in range(rng.randint(2, 40))]
            tokens.extend(block * rng.randint(2, 4))
    settings = {
        "max_chunk_repeats": rng.choice([0, 3, 10]),
        "block_min": rng.choice([4, 16]),
        "block_max": rng.choice([40, 256]),
        "block_count": rng.choice([0, 2, 3]),
    }
    guard = RepetitionGuard(**settings)
    sent = feed(guard, tokens)
    expected_sent, expected_reason, expected_count = reference_guard(tokens, **settings)
    assert (sent, guard.stop_reason, len(guard._tokens)) == (expected_sent, expected_reason, expected_count)  # pylint: disable=protected-access
