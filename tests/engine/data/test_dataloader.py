"""DataLoader: batching, collation, shuffling, samplers, drop_last and worker processes."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import engine
from engine.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
)


class Squares(Dataset):
    """Sample i is a dict with a NumPy array, a float, an int, a string and a tuple."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"x": np.full(3, i, dtype=np.float32), "f": i / 2, "i": i, "name": f"s{i}", "pair": (i, -i)}


class Shards(IterableDataset):
    """0..n-1, split between workers by ``get_worker_info``."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


def labels(loader) -> list:
    return [y.tolist() for _, y in loader]


def flat(batches) -> list:
    return [item for batch in batches for item in batch]


def tensor_data(n=10):
    return TensorDataset(engine.arange(float(n)).reshape(n, 1), engine.arange(n))


def test_batches_and_last_partial_batch():
    batches = list(DataLoader(tensor_data(), batch_size=4))
    assert [x.shape for x, _ in batches] == [engine.Size([4, 1]), engine.Size([4, 1]), engine.Size([2, 1])]
    assert labels(DataLoader(tensor_data(), batch_size=4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert labels(DataLoader(tensor_data(), batch_size=4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(tensor_data(), batch_size=4)) == 3
    assert len(DataLoader(tensor_data(), batch_size=4, drop_last=True)) == 2


def test_default_collation_of_dicts_numbers_strings_and_tuples():
    batch = next(iter(DataLoader(Squares(), batch_size=3)))
    assert batch["x"].shape == engine.Size([3, 3]) and batch["x"].dtype == engine.float32
    assert batch["f"].dtype == engine.float64 and batch["f"].tolist() == [0.0, 0.5, 1.0]
    assert batch["i"].dtype == engine.int64 and batch["i"].tolist() == [0, 1, 2]
    assert batch["name"] == ["s0", "s1", "s2"]
    assert isinstance(batch["pair"], list) and batch["pair"][1].tolist() == [0, -1, -2]


def test_default_collate_matches_torch(torch):
    Point = collections.namedtuple("Point", "x y")
    samples = [{"a": (np.ones(2) * i, i, float(i)), "p": Point(i, 2 * i), "t": engine.full((2,), float(i))}
               for i in range(3)]
    ours = default_collate(samples)
    theirs = torch.utils.data.default_collate(
        [{**s, "t": torch.tensor(s["t"].numpy())} for s in samples])
    assert type(ours["a"]) is type(theirs["a"]) and type(ours["p"]) is type(theirs["p"])
    for mine, ref in [(ours["a"][0], theirs["a"][0]), (ours["a"][1], theirs["a"][1]),
                      (ours["a"][2], theirs["a"][2]), (ours["p"].y, theirs["p"].y), (ours["t"], theirs["t"])]:
        assert mine.tolist() == ref.tolist() and mine.dtype.name == str(ref.dtype).split(".")[1]


def test_default_collate_rejects_unknown_types():
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])


def test_shuffle_is_reproducible_with_a_generator_and_a_permutation():
    def order(seed):
        return flat(labels(DataLoader(tensor_data(), batch_size=3, shuffle=True,
                                      generator=engine.Generator().manual_seed(seed))))

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert sorted(order(7)) == list(range(10))


def test_shuffle_follows_manual_seed_without_a_generator():
    engine.manual_seed(3)
    first = labels(DataLoader(tensor_data(), batch_size=5, shuffle=True))
    second = labels(DataLoader(tensor_data(), batch_size=5, shuffle=True))
    engine.manual_seed(3)
    assert labels(DataLoader(tensor_data(), batch_size=5, shuffle=True)) == first
    assert first != second


def test_random_sampler_with_a_seeded_generator_matches_torch(torch):
    for seed in (0, 11):
        for num_samples in (None, 60):
            ours = RandomSampler(range(23), num_samples=num_samples, generator=engine.Generator().manual_seed(seed))
            theirs = torch.utils.data.RandomSampler(range(23), num_samples=num_samples,
                                                    generator=torch.Generator().manual_seed(seed))
            assert list(ours) == list(theirs)


def test_random_sampler_without_a_generator_matches_torch_after_manual_seed(torch):
    engine.manual_seed(8)
    torch.manual_seed(8)
    ours, theirs = RandomSampler(range(17)), torch.utils.data.RandomSampler(range(17))
    assert [list(ours) for _ in range(2)] == [list(theirs) for _ in range(2)]


def test_random_split_and_subset_sampler_match_torch(torch):
    ours = random_split(range(30), [0.5, 0.3, 0.2], generator=engine.Generator().manual_seed(3))
    theirs = torch.utils.data.random_split(range(30), [0.5, 0.3, 0.2], generator=torch.Generator().manual_seed(3))
    assert [list(p) for p in ours] == [list(p) for p in theirs]
    ours = SubsetRandomSampler([4, 8, 9, 15, 16], generator=engine.Generator().manual_seed(1))
    theirs = torch.utils.data.SubsetRandomSampler([4, 8, 9, 15, 16], generator=torch.Generator().manual_seed(1))
    assert list(ours) == list(theirs)


def test_shuffled_batches_match_torch_with_and_without_a_generator(torch):
    def batches(loader):
        return [b.tolist() for b in loader]

    ours = DataLoader(engine.arange(17), batch_size=4, shuffle=True, generator=engine.Generator().manual_seed(2))
    theirs = torch.utils.data.DataLoader(torch.arange(17), batch_size=4, shuffle=True,
                                         generator=torch.Generator().manual_seed(2))
    assert [batches(ours) for _ in range(2)] == [batches(theirs) for _ in range(2)]
    engine.manual_seed(6)
    torch.manual_seed(6)
    ours = DataLoader(engine.arange(17), batch_size=4, shuffle=True)
    theirs = torch.utils.data.DataLoader(torch.arange(17), batch_size=4, shuffle=True)
    assert [batches(ours) for _ in range(2)] == [batches(theirs) for _ in range(2)]


def test_each_epoch_reshuffles():
    loader = DataLoader(tensor_data(), batch_size=10, shuffle=True, generator=engine.Generator().manual_seed(0))
    assert labels(loader) != labels(loader)


def test_samplers():
    g = engine.Generator().manual_seed(0)
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert sorted(RandomSampler(range(6), generator=g)) == list(range(6))
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=40, generator=g))
    assert len(drawn) == 40 and set(drawn) <= {0, 1, 2}
    assert len(list(RandomSampler(range(4), num_samples=10, generator=g))) == 10
    assert sorted(SubsetRandomSampler([4, 8, 9], generator=g)) == [4, 8, 9]
    weighted = list(WeightedRandomSampler([0.0, 0.0, 1.0, 0.0], 5, generator=g))
    assert weighted == [2] * 5
    unique = list(WeightedRandomSampler([1.0, 2.0, 3.0], 3, replacement=False, generator=g))
    assert sorted(unique) == [0, 1, 2]
    assert list(BatchSampler(range(5), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(range(5), 2, drop_last=False)) == 3


def test_sampler_and_batch_sampler_options():
    ds = tensor_data()
    assert labels(DataLoader(ds, batch_size=2, sampler=[9, 8, 7])) == [[9, 8], [7]]
    assert labels(DataLoader(ds, batch_sampler=[[1, 2], [5]])) == [[1, 2], [5]]
    unbatched = list(DataLoader(ds, batch_size=None, sampler=[3, 4]))
    assert [y.item() for _, y in unbatched] == [3, 4]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"sampler": [0], "shuffle": True}, "mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, "mutually exclusive with drop_last"),
    ({"num_workers": -1}, "non-negative"),
    ({"prefetch_factor": 2}, "prefetch_factor"),
    ({"persistent_workers": True}, "num_workers > 0"),
])
def test_conflicting_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(tensor_data(), **kwargs)


def test_iterable_dataset_rejects_shuffle():
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Shards(4), shuffle=True)


def test_two_workers_give_the_same_batches_as_the_main_process():
    ds = Squares()
    kwargs = {"batch_size": 3, "shuffle": True}
    main = list(DataLoader(ds, generator=engine.Generator().manual_seed(5), **kwargs))
    workers = list(DataLoader(ds, generator=engine.Generator().manual_seed(5), num_workers=2, **kwargs))
    assert [b["i"].tolist() for b in main] == [b["i"].tolist() for b in workers]
    assert all(engine.equal(a["x"], b["x"]) for a, b in zip(main, workers, strict=True))


def test_workers_run_init_fn_and_see_worker_info():
    def init(worker_id):
        info = get_worker_info()
        assert info.id == worker_id and info.num_workers == 2

    class WhoLoads(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            info = get_worker_info()
            return info.id, info.seed

    batches = list(DataLoader(WhoLoads(), batch_size=2, num_workers=2, worker_init_fn=init))
    workers = [b[0].tolist() for b in batches]
    assert workers == [[0, 0], [1, 1], [0, 0], [1, 1]]
    seeds = {b[1][0].item() for b in batches}
    assert len(seeds) == 2
    assert get_worker_info() is None


def test_iterable_dataset_sharded_across_workers():
    single = flat(b.tolist() for b in DataLoader(Shards(11), batch_size=3))
    multi = flat(b.tolist() for b in DataLoader(Shards(11), batch_size=3, num_workers=2))
    assert single == list(range(11))
    assert sorted(multi) == list(range(11))


def test_worker_errors_are_raised_in_the_main_process():
    class Broken(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise KeyError("no sample 2")
            return i

    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process"):
        list(DataLoader(Broken(), batch_size=1, num_workers=2))


def test_pin_memory_and_worker_options_are_accepted():
    loader = DataLoader(tensor_data(), batch_size=5, pin_memory=True, num_workers=1, prefetch_factor=1,
                        persistent_workers=True, timeout=30)
    assert labels(loader) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_subset_concat_and_random_split():
    ds = tensor_data()
    assert [ds_y.item() for _, ds_y in Subset(ds, [7, 2])] == [7, 2]
    both = ConcatDataset([ds, Subset(ds, [0, 1])])
    assert len(both) == 12 and both[11][1].item() == 1 and both[-1][1].item() == 1
    assert len(ds + ds) == 20
    g = engine.Generator().manual_seed(0)
    parts = random_split(ds, [0.7, 0.3], generator=g)
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    again = random_split(ds, [7, 3], generator=engine.Generator().manual_seed(0))
    assert again[0].indices == parts[0].indices
    assert [len(p) for p in random_split(range(10), [0.34, 0.33, 0.33])] == [4, 3, 3]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])


def test_tensor_dataset_checks_sizes():
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(engine.zeros(3), engine.zeros(4))
