"""Gold of the declarative pipeline: the KPI tables, computed by nyc911lib.gold as in the notebooks.

The gold scope comes from `nyc911.date_from` / `nyc911.date_to` (default: every week).

Every dataset is declared once in nyc911lib.datasets; this file only registers the gold ones with
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
for dataset in layer_datasets("gold"):
    pipeline.declare(dataset)
