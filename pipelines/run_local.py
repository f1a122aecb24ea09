"""Run the declarative pipeline locally on Delta: `spark-pipelines run` with the project's settings.

From the repo root, after `make venv`:

    .venv/bin/python pipelines/run_local.py
    .venv/bin/python pipelines/run_local.py --spec SPEC --warehouse DIR [spark-pipelines run options]

Tables land in `<warehouse>/spark-warehouse/<table>`, Delta; the default warehouse is
`warehouse/sdp/`, apart from the notebooks' tables.

Why a launcher around `spark-pipelines run` (open-source SDP, pyspark 4.2.0):
- the spec's `configuration` is set on every flow as SQL confs, where a static conf fails the
  flow, so Delta's session extension and catalog are passed as `--conf` options instead;
- pyspark 4.2.0 starts the local Spark Connect server with the last chunk of the spark-submit
  settings only (they come in chunks of 10, `PYSPARK_REMOTE_INIT_CONF_<i>`, which overwrite each
  other), and spark-submit adds 6 of its own: so only 3 are passed, the runtime settings live in
  the spec, and the table folder is set by the working directory (Spark's default
  `spark-warehouse/` under it);
- `--jars` does not reach the class loader of that server, so the Delta jars from `.jars/` go on
  the JVM class path through SPARK_DIST_CLASSPATH;
- SDP keeps its catalog in memory, so a second run would find the previous tables' folders and
  fail to create them: each run starts from an empty warehouse (every dataset is a materialized
  view, recomputed in full on each run anyway).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from nyc911lib.spark import LOCAL_CONF, delta_jars

PIPELINES = Path(__file__).resolve().parent
DEFAULT_SPEC = PIPELINES / "spark-pipeline.yml"
DEFAULT_WAREHOUSE = PIPELINES.parent / "warehouse" / "sdp"
MARKER = ".nyc911-sdp-warehouse"  # only a folder carrying it is ever emptied
# The static settings of nyc911lib.spark.LOCAL_CONF a run needs (10 fit, spark-submit adds 6).
STATIC_CONF = ("spark.sql.extensions", "spark.sql.catalog.spark_catalog", "spark.ui.enabled")


def command(spec: Path, run_options: list[str]) -> tuple[list[str], dict[str, str]]:
    """The spark-pipelines command line and its environment."""
    jars = delta_jars()
    if not jars:
        raise SystemExit("Delta jars not found in .jars/: run `make venv` (it fetches them with Maven)")
    bin_dir = Path(sys.executable).parent
    args = [str(bin_dir / "spark-pipelines")]
    for key in STATIC_CONF:
        args += ["--conf", f"{key}={LOCAL_CONF[key]}"]
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_DIST_CLASSPATH": os.pathsep.join(str(jar) for jar in jars),
        "SPARK_DRIVER_MEMORY": LOCAL_CONF["spark.driver.memory"],  # the JVM starts before any conf
    }
    return [*args, "run", "--spec", str(spec), *run_options], env


def empty_warehouse(warehouse: Path) -> None:
    """Start from an empty warehouse folder; refuse to empty one this launcher did not create."""
    if warehouse.exists() and any(warehouse.iterdir()):
        if not (warehouse / MARKER).is_file():
            raise SystemExit(f"{warehouse} is not empty and was not made by {Path(__file__).name}")
        shutil.rmtree(warehouse)
    warehouse.mkdir(parents=True, exist_ok=True)
    (warehouse / MARKER).touch()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="pipeline spec file")
    parser.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE, help="folder of the tables")
    args, run_options = parser.parse_known_args(argv)
    warehouse = args.warehouse.resolve()
    empty_warehouse(warehouse)
    cmd, env = command(args.spec.resolve(), run_options)
    print(f"$ cd {warehouse} && {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, cwd=warehouse, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
