"""Delta tables on the spark engine (delta-spark): what only this backend does."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.spark


def test_a_table_maintained_by_delta_rs_keeps_its_data_version_and_takes_writes(spark, tmp_path):
    """Retention maintenance is delta-rs's whichever engine wrote the table: Spark then reads the
    checkpoint and trimmed log delta-rs left, sees the data commit's version and metadata, and
    writes on."""
    from deltalake import DeltaTable  # noqa: PLC0415

    from nyc911lib.io.delta_rs import maintain  # noqa: PLC0415
    from nyc911lib.io.delta_spark import DeltaSparkTables  # noqa: PLC0415
    from nyc911lib.io.tables import Commit  # noqa: PLC0415
    from nyc911lib.run.retention import retention_properties  # noqa: PLC0415

    name = str(tmp_path / "t")
    tables = DeltaSparkTables(spark)
    tables.write(spark.createDataFrame([(1,), (2,)], "k long"), name, mode="overwrite", metadata={"run": 1})
    tables.write(spark.createDataFrame([(3,)], "k long"), name, mode="overwrite", metadata={"run": 2})
    maintain(name, retention_properties(0), retain_hours=0)
    current = {Path(f).name for f in DeltaTable(name).file_uris()}
    assert {p.name for p in Path(name).glob("*.parquet")} == current  # v0's files and empty ones gone
    assert {p.name for p in Path(name).glob(".*.crc")} == {f".{f}.crc" for f in current}  # Hadoop's too
    assert sorted(p.name for p in (Path(name) / "_delta_log").iterdir() if p.is_file()) == [
        "00000000000000000004.checkpoint.parquet",
        "00000000000000000004.json",
        "_last_checkpoint",
    ]
    assert tables.last_commit(name) == Commit(1, {"run": 2}, 4)
    assert [r.k for r in tables.read(name).collect()] == [3]
    tables.write(spark.createDataFrame([(4,)], "k long"), name, mode="append", metadata={"run": 3})
    assert tables.last_commit(name) == Commit(5, {"run": 3}, 5)
    assert sorted(r.k for r in tables.read(name).collect()) == [3, 4]
