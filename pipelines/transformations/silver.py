"""Silver of the declarative pipeline: typed rows, quality rules, one row per key, quarantine.

On Databricks the quality rules become expectations on `e2e_valid`; on open-source Spark
Declarative Pipelines (no expectations API) the same rules are applied inside its query. The
rows failing a drop rule are their own dataset, `e2e_quarantine`, on both.

Every dataset is declared once in nyc911lib.datasets; this file only registers the silver ones with
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
for dataset in layer_datasets("silver"):
    pipeline.declare(dataset)
