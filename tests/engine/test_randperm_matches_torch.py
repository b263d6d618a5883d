"""randperm and the seeds samplers draw: PyTorch's CPU mt19937 stream, draw for draw."""

import numpy as np
import pytest

import engine
from engine import _permutation

SEEDS = [0, 1, 42, 2 ** 40 + 7, -3, 67280421310721]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [0, 1, 2, 10, 1000, 70000])
def test_randperm_with_a_seeded_generator_is_torchs(torch, seed, n):
    ours = engine.randperm(n, generator=engine.Generator().manual_seed(seed))
    theirs = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    assert ours.dtype is engine.int64
    assert ours.tolist() == theirs.tolist()


def test_a_negative_n_is_refused_as_torch_refuses_it(torch):
    with pytest.raises(RuntimeError, match=r"negative dimension -1: \[-1\]"):
        engine.randperm(-1)
    with pytest.raises(RuntimeError, match=r"negative dimension -1: \[-1\]"):
        torch.randperm(-1)


def test_consecutive_randperms_on_the_default_generator_are_torchs(torch):
    engine.manual_seed(5)
    torch.manual_seed(5)
    for n in (7, 300, 1):
        assert engine.randperm(n).tolist() == torch.randperm(n).tolist()


def test_a_fresh_default_generator_starts_where_torchs_does(torch):
    n = 20
    assert (engine.randperm(n, generator=engine.Generator()).tolist()
            == torch.randperm(n, generator=torch.Generator()).tolist())


def test_seed_draw_is_torchs_int64_random_(torch):
    g, tg = engine.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    for _ in range(3):
        assert g.seed_draw() == torch.empty((), dtype=torch.int64).random_(generator=tg).item()
    assert engine.randperm(50, generator=g).tolist() == torch.randperm(50, generator=tg).tolist()


def test_other_distributions_do_not_move_the_permutation_stream():
    g = engine.Generator().manual_seed(3)
    expected = engine.randperm(40, generator=g).tolist()
    g.manual_seed(3)
    engine.rand(5, generator=g)
    engine.randint(0, 9, (4,), generator=g)
    assert engine.randperm(40, generator=g).tolist() == expected


def test_generator_state_round_trips_the_permutation_stream():
    g = engine.Generator().manual_seed(7)
    engine.randperm(1000, generator=g)
    state = g.get_state()
    first = engine.randperm(30, generator=g).tolist()
    g.set_state(state)
    assert engine.randperm(30, generator=g).tolist() == first


def test_randperm_drawn_in_several_blocks_is_still_torchs(torch, monkeypatch):
    monkeypatch.setattr(_permutation, "_CHUNK", 64)
    ours = engine.randperm(1000, generator=engine.Generator().manual_seed(2))
    assert ours.tolist() == torch.randperm(1000, generator=torch.Generator().manual_seed(2)).tolist()


def test_the_large_n_path_is_torchs_inside_out_shuffle(monkeypatch):
    """From UINT32_MAX / 20 on torch switches algorithm; checked here at a small n against its text (and once by
    hand against torch at n = SMALL_N_LIMIT: equal, but ~6 minutes and 4 GB, too heavy for CI)."""
    n, seed = 1000, 4
    mt = np.random.RandomState(seed)
    expected = list(range(n))
    for i in range(n):
        hi, lo = (int(x) for x in mt.randint(0, 1 << 32, size=2, dtype=np.uint32))
        z = ((hi << 32) | lo) % (i + 1)
        expected[i], expected[z] = expected[z], i
    monkeypatch.setattr(_permutation, "SMALL_N_LIMIT", 0)
    monkeypatch.setattr(_permutation, "_CHUNK", 64)  # several blocks
    assert engine.randperm(n, generator=engine.Generator().manual_seed(seed)).tolist() == expected

