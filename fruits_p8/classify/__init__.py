"""From features to answers: a classifier trained on a run's output, and its evaluation.

`train` fits a multinomial logistic regression (Spark ML) on the `pca` or `features` column
of a finished output and saves it with a card that says which features it expects;
`evaluate` scores it on another output made the same way.
"""
