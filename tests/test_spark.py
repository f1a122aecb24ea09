"""The session's size-dependent settings: small-data shuffles that switch off as data grows."""

from __future__ import annotations

import pytest

from nyc911lib.config import PerformanceSettings
from nyc911lib.spark import shuffle_partitions_for, size_shuffles

pytestmark = pytest.mark.spark

MB = 2**20


@pytest.mark.parametrize(
    ("data_bytes", "partitions"),
    [
        (0, 4),  # an empty bronze
        (1_200_000, 4),  # the real export's bronze (about 1 MB): the small-data setting
        (256 * MB, 4),  # exactly min x 64 MB
        (256 * MB + 1, 5),
        (1700 * MB, 27),  # 1,000x the export
    ],
)
def test_shuffle_partitions_grow_with_the_data(data_bytes, partitions):
    assert shuffle_partitions_for(data_bytes, PerformanceSettings()) == partitions


def test_shuffle_partitions_follow_the_params():
    settings = PerformanceSettings(shuffle_partition_mb=10, min_shuffle_partitions=2)
    assert [shuffle_partitions_for(n * MB, settings) for n in (1, 20, 21, 95)] == [2, 2, 3, 10]


def test_size_shuffles_sets_the_session_unless_the_user_fixed_it(spark, monkeypatch):
    before = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        monkeypatch.delenv("NYC911_SHUFFLE_PARTITIONS", raising=False)
        assert size_shuffles(spark, 1000 * MB, PerformanceSettings()) == 16
        assert spark.conf.get("spark.sql.shuffle.partitions") == "16"
        assert spark.conf.get("spark.sql.files.maxPartitionBytes") == str(64 * MB)  # files split alike
        monkeypatch.setenv("NYC911_SHUFFLE_PARTITIONS", "3")
        spark.conf.set("spark.sql.shuffle.partitions", "3")
        assert size_shuffles(spark, 1000 * MB, PerformanceSettings()) == 3
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
