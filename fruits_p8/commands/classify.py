"""`fruits-p8 train`, `evaluate` and `predict`: a classifier on a run's features, its score,
and its answers for new photos."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from fruits_p8.commands.common import Formatter, add_s3_options, s3_settings, session
from fruits_p8.config import default_cache_dir
from fruits_p8.errors import InputError, OutputExistsError, UsageError

ON_HELP = ("the column the classifier reads: pca (the scaler + PCA of the output's fitted "
           "basis: evaluate and apply it to outputs made with `run --fitted`) or features "
           "(the CNN's own)")


def add_commands(sub) -> None:
    """train, evaluate and predict."""
    train = sub.add_parser(
        "train", formatter_class=Formatter,
        help="train a classifier (logistic regression) on a run's features",
        description="Fit a multinomial logistic regression (Spark ML) on the labelled images "
        "of a finished run output. Its L2 regularisation is chosen on a validation split by "
        "video blocks (Fruits 360 names are frames of a video: runs of consecutive frames "
        "go to one side, so near-copies never score each other), then it is refitted on all "
        "the images. Writes CLASSIFIER/classifier (a Spark ML PipelineModel: regression, "
        "then the label names) and CLASSIFIER/classifier.json (classes, counts, validation "
        "accuracy, the features it expects).")
    train.add_argument("features", metavar="FEATURES_OUTPUT",
                       help="a finished `fruits-p8 run` output (path or s3://)")
    train.add_argument("--output", required=True, metavar="CLASSIFIER",
                       help="where the classifier goes (a new folder, path or s3://)")
    train.add_argument("--on", default="pca", choices=["pca", "features"], help=ON_HELP)
    train.add_argument("--overwrite", action="store_true",
                       help="replace a classifier fruits_p8 wrote there")
    train.add_argument("--master", default=None, help="Spark master [default: local[*,4]]")
    add_s3_options(train)
    train.set_defaults(handler=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", formatter_class=Formatter,
        help="score a classifier on a run's features: accuracy, per label, confusions",
        description="Apply CLASSIFIER to the labelled images of FEATURES_OUTPUT (made with "
        "the same backbone, weights and precision; for --on pca, with the training output's "
        "fitted basis: `run --fitted TRAINING_OUTPUT`) and print the accuracy, the labels "
        "below 100 % and the most confused pairs.")
    evaluate.add_argument("classifier", metavar="CLASSIFIER", help="what `train` wrote")
    evaluate.add_argument("features", metavar="FEATURES_OUTPUT",
                          help="a finished `fruits-p8 run` output (path or s3://)")
    evaluate.add_argument("--json", default=None, metavar="FILE",
                          help="also write every figure as JSON to FILE (a new file)")
    evaluate.add_argument("--master", default=None, help="Spark master [default: local[*,4]]")
    add_s3_options(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = sub.add_parser(
        "predict", formatter_class=Formatter,
        help="label photos with a trained classifier (one process, no Spark)",
        description="Print the three most likely labels of each image, with their "
        "probabilities: the classifier's backbone, fitted basis and regression applied in "
        "this process, without Spark (the same numbers as `run --fitted` + the Spark ML "
        "model). For a large folder, --output runs it on Spark and writes Parquet.")
    predict.add_argument("classifier", metavar="CLASSIFIER", help="what `train` wrote")
    predict.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+",
                         help="image files, or folders searched for --glob")
    predict.add_argument("--glob", default="*.jpg", help="image names inside folders")
    predict.add_argument("--output", default=None, metavar="RUN_OUTPUT",
                         help="for a large folder: featurize it on Spark into this new run "
                         "output (`run --fitted` with the classifier's basis) and add "
                         "predictions.parquet (path, label, predicted_label, probability in "
                         "the card's class order) to it; one IMAGE_OR_FOLDER then")
    predict.add_argument("--overwrite", action="store_true",
                         help="with --output: replace a run output fruits_p8 wrote there")
    predict.add_argument("--master", default=None,
                         help="with --output: Spark master [default: local[*,4]]")
    predict.add_argument("--json", action="store_true",
                         help="one JSON object per image instead of the table")
    predict.add_argument("--cache-dir", type=Path, default=None,
                         help="cache for converted weights [default: $FRUITS_P8_CACHE or "
                         "~/.cache/fruits_p8]")
    add_s3_options(predict)
    predict.set_defaults(handler=cmd_predict)


def cmd_train(args: argparse.Namespace) -> int:
    from fruits_p8.classify.train import train

    with session(args, args.master, default_cache_dir(os.environ)) as spark:
        card = train(spark, args.features, args.output, args.on, overwrite=args.overwrite,
                     settings=s3_settings(args))
    print(f"  classifier {args.output}  ({len(card.classes)} labels, "
          f"{sum(card.training_counts.values())} images, on {card.on}, regParam "
          f"{card.reg_param:g})\n  validation {card.validation['accuracy']:.4f} on "
          f"{card.validation['images']} images (video blocks)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fruits_p8.classify.evaluate import evaluate

    target = Path(args.json) if args.json else None
    if target is not None and (target.exists() or target.is_symlink()):
        raise OutputExistsError(f"{target} exists: give --json a new file name")
    with session(args, args.master, default_cache_dir(os.environ)) as spark:
        scores = evaluate(spark, args.classifier, args.features, s3_settings(args))
    if target is not None:
        target.write_text(json.dumps(scores, indent=2) + "\n")
    print(render(scores))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from fruits_p8.classify.predict import predict

    if args.output is not None:
        return _predict_on_spark(args)
    found = predict(args.classifier, args.images, args.cache_dir, s3_settings(args), args.glob)
    for one in found:
        if args.json:
            print(json.dumps({"path": one.path, "label": one.label,
                              "top": [{"label": a, "probability": round(b, 6)}
                                      for a, b in one.top], "error": one.error}))
        elif one.error is None:
            print(f"{one.path}\t" + "\t".join(f"{a} ({b:.3f})" for a, b in one.top))
    failed = [one for one in found if one.error is not None]
    if failed:
        raise InputError(f"{len(failed)} of {len(found)} files are not readable images, "
                         f"e.g. {failed[0].path}: {failed[0].error}")
    return 0


def _predict_on_spark(args: argparse.Namespace) -> int:
    from fruits_p8.classify.spark_predict import PREDICTIONS, predict_on_spark

    if len(args.images) != 1:
        raise UsageError("predict --output takes one folder (or s3:// prefix) of images")
    cache_dir = args.cache_dir or default_cache_dir(os.environ)
    with session(args, args.master, cache_dir) as spark:
        result, count = predict_on_spark(spark, args.classifier, args.images[0], args.output,
                                         cache_dir, s3_settings(args), args.overwrite,
                                         args.glob)
    print(f"  predictions {args.output}/{PREDICTIONS}  ({count} images; {result.errors} "
          f"files are not readable images: {args.output}/errors)")
    return 0


def render(scores: dict) -> str:
    """The evaluation as a few readable lines."""
    below = {k: v for k, v in scores["per_label"].items() if v["accuracy"] < 1}
    lines = [f"  accuracy   {scores['accuracy']:.4f} on {scores['images']} images "
             f"({scores['on']}); {len(scores['per_label']) - len(below)} of "
             f"{len(scores['per_label'])} labels at 100 %"]
    for label, figures in sorted(below.items(), key=lambda i: i[1]["accuracy"]):
        lines.append(f"  {figures['accuracy']:.3f}      {label} ({figures['images']} images)")
    for pair in scores["confused"]:
        lines.append(f"  confused   {pair['label']} -> {pair['predicted']}: "
                     f"{pair['images']} image{'' if pair['images'] == 1 else 's'}")
    if scores["unknown_labels"]:
        lines.append("  unknown    labels the classifier never saw: "
                     + ", ".join(scores["unknown_labels"]))
    return "\n".join(lines)
