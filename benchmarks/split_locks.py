"""`make lock`: split one full resolution into the three lock files (default engine, Spark, dev).

Usage: python -m benchmarks.split_locks ALL LOCAL LOCAL_SPARK, the `pip freeze` of `.[local,spark,dev]`,
`.[local]` and `.[local,spark]`. Every version comes from ALL, so the three files install together.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADERS = {
    "requirements-lock.txt": (
        "# The default engine and the notebooks runner, pinned (pip freeze of `pip install .[local]`,\n"
        "# versions from the full resolution of `.[local,spark,dev]`): what `make run` installs. No Java.\n"
        "# Regenerate all three lock files with `make lock` after changing pyproject.toml.\n"
    ),
    "requirements-spark-lock.txt": (
        "# The Spark engine's own packages, on top of requirements-lock.txt (the `spark` extra), pinned.\n"
        "# `make test` installs them; the Spark engine needs Java 17+.\n"
    ),
    "requirements-dev-lock.txt": (
        "# The test and lint tools, on top of the other two lock files (the `dev` extra), pinned.\n"
    ),
}


def _load(path: str) -> dict[str, str]:
    pins = {}
    for line in Path(path).read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = f"{name}=={version}"
    return pins


def main(all_path: str, local_path: str, spark_path: str) -> None:
    full, local, with_spark = _load(all_path), _load(local_path), _load(spark_path)
    groups = {
        "requirements-lock.txt": [n for n in local],
        "requirements-spark-lock.txt": [n for n in with_spark if n not in local],
        "requirements-dev-lock.txt": [n for n in full if n not in with_spark],
    }
    for name, names in groups.items():
        lines = sorted((full[n] for n in names), key=str.lower)
        (REPO / name).write_text(HEADERS[name] + "\n".join(lines) + "\n")
        print(f"{name}: {len(lines)} packages")


if __name__ == "__main__":
    main(*sys.argv[1:4])
