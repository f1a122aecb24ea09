"""Silver of the declarative pipeline: the registry's silver entries, declared on the engine that
imports this file (Databricks Lakeflow / DLT, or open-source Spark Declarative Pipelines).

Every table is named once, in nyc911lib.run.registry; nyc911lib.run.declarative declares it.
"""

from pyspark.sql import SparkSession

from nyc911lib import declare_layer

try:  # Databricks: `dlt` has the expectation decorators
    import dlt as dp
except ImportError:  # open-source Spark Declarative Pipelines (pyspark[pipelines] 4.1+)
    from pyspark import pipelines as dp

session: SparkSession = spark  # noqa: F821 - the pipeline runtime defines `spark` for its sources

declare_layer(dp, session, "silver")
