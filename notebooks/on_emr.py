# %% [markdown]
# # fruits_p8 on an EMR cluster
#
# The whole job on the cluster's Spark, from `s3://` photos to `s3://` features, then a
# classifier of the features: a Spark ML logistic regression on the PCA column, fitted on 80 %
# of the images and scored on the rest. Attach it to a cluster whose bootstrap installed
# fruits_p8 (README, "On AWS EMR": `fruits-p8 emr plan --notebook` shows the requests), pick
# the PySpark kernel (its code runs in a Livy session with the bootstrap's Python), set the
# parameters below, run all. A cluster left up for a notebook bills every hour, idle or
# not (EC2 + EMR fee per instance; `emr plan` prints the figures for its cluster): terminate
# it when done (`fruits-p8 emr terminate j-...`).
#
# `on_emr.py` (Jupytext percent format) is the source of `on_emr.ipynb`. **The outputs in
# `on_emr.ipynb` are from a local run**, not a cluster: `python scripts/notebooks.py build
# on_emr --local` runs it on this machine with `INPUT` = the 360 photos embedded in the
# package, a temporary `OUTPUT`, `MASTER = "local[*,4]"` and `K = 20` (injected after the
# parameters cell, then removed), the code path a cluster runs but for the session and the
# file system. A test runs it so too.

# %% tags=["parameters"]
INPUT = "s3://my-fruits/fruits-360/Test"  # <Label>/<image>.jpg under it
OUTPUT = "s3://my-fruits/features/notebook"  # replaced on each run (a fruits_p8 output only)
K = 50  # principal components kept
MASTER = None  # None: the cluster's session; "local[*]": a session started on this machine
TRAIN_SHARE = 0.8
SEED = 7

# %% [markdown]
# ## 1. The Spark session
# On the cluster, `getOrCreate()` returns the session the kernel runs in (YARN, the cluster's
# settings); elsewhere `build_session` starts a local one with a usable Java.

# %%
import os

from pyspark.sql import SparkSession

from fruits_p8 import RunConfig, build_session, default_cache_dir, run

if MASTER is None:
    spark = SparkSession.builder.getOrCreate()
else:
    spark = build_session(MASTER, os.environ, default_cache_dir(os.environ))
print(f"Spark {spark.version}, master {spark.sparkContext.master}")

# %% [markdown]
# ## 2. The job: list, featurize, standardise + PCA, write
# The same `run` as `fruits-p8 run` and the EMR step: Parquet features, the fitted model and
# run.json under `OUTPUT`. Every file ends as one feature row or one error row.

# %%
result = run(RunConfig(input=INPUT, output=OUTPUT, k=K, overwrite=True), spark=spark)
print(f"{result.files} files: {result.rows} featurized, {result.errors} errors; "
      f"k={result.k} keeps {result.explained_variance:.1%} of the variance")
print(f"output: {result.output}")

# %% [markdown]
# ## 3. A classifier of the features
# The written features read back; labels indexed; a logistic regression on the `pca` column.
# Fruits 360 photographs each fruit turning, so neighbouring photos are near copies: a random
# split flatters the score (the report's quality check and docs/data_quality.md say more).

# %%
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import StringIndexer
from pyspark.ml.functions import array_to_vector
from pyspark.sql import functions as F

features = spark.read.parquet(f"{result.output}/features")
data = features.select("label", array_to_vector("pca").alias("pca")).cache()
train, test = data.randomSplit([TRAIN_SHARE, 1 - TRAIN_SHARE], seed=SEED)
classifier = Pipeline(stages=[
    StringIndexer(inputCol="label", outputCol="y", handleInvalid="keep"),
    LogisticRegression(featuresCol="pca", labelCol="y", maxIter=200),
]).fit(train)
scored = classifier.transform(test).cache()
accuracy = MulticlassClassificationEvaluator(
    labelCol="y", predictionCol="prediction", metricName="accuracy").evaluate(scored)
print(f"accuracy {accuracy:.1%} on {scored.count()} held-out images "
      f"({train.count()} to fit, {data.select('label').distinct().count()} labels, k={K})")

# %%
right = (F.col("prediction") == F.col("y")).cast("int")
per_label = (scored.groupBy("label").agg(F.count("*").alias("held_out"),
                                         F.sum(right).alias("right"))
             .orderBy("label").toPandas())
per_label["accuracy"] = (per_label["right"] / per_label["held_out"]).round(2)
per_label.set_index("label")

# %%
data.unpersist()
scored.unpersist()
if MASTER is not None:
    spark.stop()  # a session this notebook started; the cluster's stays up for the next one
