import numpy as np

from latentquant.evaluate import eval_indices
from latentquant.train import BatchStream, is_eval_step


def test_reference_eval_schedule():
    steps = [s for s in range(0, 20_001) if is_eval_step(s, 20_000, 5_000)]
    assert steps[:11] == [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000]
    assert steps[11:] == [10_000, 15_000, 20_000]


def test_eval_schedule_without_early_evaluations_and_odd_end():
    assert [s for s in range(0, 2_501) if is_eval_step(s, 2_500, 1_000, early=False)] == [0, 1000, 2000, 2500]


def test_batch_stream_covers_each_epoch_once_and_resumes_exactly():
    stream = BatchStream(10, 4, seed=3)
    two_epochs = np.concatenate([stream.next() for _ in range(5)])
    assert np.array_equal(np.bincount(two_epochs, minlength=10), np.full(10, 2))
    assert stream.state() == {"epoch": 2, "position": 0}
    stream = BatchStream(10, 4, seed=3)
    drawn = [stream.next() for _ in range(3)]
    resumed = BatchStream(10, 4, seed=3, **stream.state())
    straight = BatchStream(10, 4, seed=3)
    for _ in range(3):
        straight.next()
    for _ in range(5):
        assert np.array_equal(resumed.next(), straight.next())
    assert len(np.unique(np.concatenate(drawn))) == 10  # 12 draws from 10 items: all seen


def test_eval_indices_are_fixed_and_distinct():
    a, b = eval_indices(1000, 100, 7), eval_indices(1000, 100, 7)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100
    assert len(eval_indices(50, 100, 7)) == 50
