"""Files whose bytes equal another file's, found from the digests the featurizer made."""

from __future__ import annotations


def find_duplicates(featurized, examples: int = 5) -> dict:
    """Files whose bytes equal another file's: counts, and a few groups to look at.

    A count per digest first (one light job); labels and paths only for the digests that
    repeat, in a second job that runs only when there are any."""
    from pyspark.sql import functions as F

    content = featurized.where(F.col("digest").isNotNull() & (F.col("length") > 0))
    repeated = [r.digest for r in content.groupBy("digest").count().where("count > 1")
                .select("digest").collect()]
    rows = []
    if repeated:
        digests = featurized.sparkSession.createDataFrame([(d,) for d in repeated],
                                                          "digest string")
        groups = (content.join(F.broadcast(digests), "digest")
                  .groupBy("digest")
                  .agg(F.count("*").alias("n"),
                       F.sort_array(F.collect_set("label")).alias("labels"),
                       F.sort_array(F.collect_list("path")).alias("paths")))
        rows = sorted(groups.collect(), key=lambda r: (-r.n, r.digest))
    return {
        "files": int(sum(r.n for r in rows)),
        "groups": len(rows),
        "groups_across_labels": sum(1 for r in rows if len(r.labels) > 1),
        "examples": [{"labels": list(r.labels), "paths": list(r.paths)[:10]}
                     for r in rows[:examples]],
    }
