"""The sender's batches: columns per key, whatever keys each log call had."""

from __future__ import annotations

import math

from panda.client._sender import _Batch


def test_batch_record_with_changing_keys_keeps_each_column_in_order() -> None:
    batch = _Batch()
    batch.add(0, 10.0, {"loss": 1.0, "lr": 0.1})
    batch.add(1, 11.0, {"lr": 0.2, "loss": 2.0})  # same keys, another order
    batch.add(2, 12.0, {"loss": 3.0})
    batch.add(3, 13.0, {"loss": 4.0, "acc": 0.5})
    batch.add(4, 14.0, {"lr": 0.3})

    record = batch.record()

    assert record["count"] == 8
    assert record["columns"] == {
        "loss": {
            "steps": [0, 1, 2, 3],
            "values": [1.0, 2.0, 3.0, 4.0],
            "times": [10.0, 11.0, 12.0, 13.0],
        },
        "lr": {
            "steps": [0, 1, 4],
            "values": [0.1, 0.2, 0.3],
            "times": [10.0, 11.0, 14.0],
        },
        "acc": {"steps": [3], "values": [0.5], "times": [13.0]},
    }


def test_batch_record_spells_out_non_finite_values() -> None:
    batch = _Batch()
    for step, value in enumerate([1.0, math.nan, math.inf, -math.inf]):
        batch.add(step, 0.0, {"loss": value})

    values = batch.record()["columns"]["loss"]["values"]

    assert values == [1.0, "NaN", "Infinity", "-Infinity"]
