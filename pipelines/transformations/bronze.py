"""Bronze of the declarative pipeline: the CSV export as received (`e2e_raw`).

The export comes from the pipeline configuration `nyc911.source` (default: the built-in sample);
run_config resolves, checks and identifies it, at the edge, before any dataset is declared.

Every dataset is declared once in nyc911lib.datasets; this file only registers the bronze ones with
the engine that imports it: Databricks Lakeflow / DLT or open-source Spark Declarative Pipelines.
"""

from pyspark.sql import SparkSession

from nyc911lib import Pipeline, layer_datasets, run_config

try:  # Databricks: `dlt` has the expectation decorators
    import dlt as dp
except ImportError:  # open-source Spark Declarative Pipelines (pyspark[pipelines] 4.1+)
    from pyspark import pipelines as dp

session: SparkSession = spark  # noqa: F821 - the pipeline runtime defines `spark` for its sources

pipeline = Pipeline(dp, session, run_config(session.conf.get))
for dataset in layer_datasets("bronze"):
    pipeline.declare(dataset)
