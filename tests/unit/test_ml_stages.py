"""The Spark ML stages follow pyspark's conventions (pyspark.ml.feature.PCA): getters,
setters, setParams, defaults only in _setDefault, copy(), model Params that describe the
model; the featurizer stage frees the weights it broadcast. No SparkSession: Params are plain
Python objects, and the CNN is replaced by a fake."""

import inspect

import numpy as np
import pytest

from fruits_p8.config import DEFAULT_K
from fruits_p8.features import backbones
from fruits_p8.features import featurizer as featurizing
from fruits_p8.features.ml_stage import ImageFeaturizer
from fruits_p8.reduce.basis import PcaBasis
from fruits_p8.reduce.ml_stage import PcaReducer, PcaReducerModel


def basis(k: int = 2) -> PcaBasis:
    return PcaBasis(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.5, 2.0]), np.eye(3)[:, :k],
                    np.array([0.5, 0.3, 0.2])[:k])


@pytest.mark.parametrize("stage", [ImageFeaturizer, PcaReducer])
def test_defaults_live_only_in_set_default(stage):
    signature = inspect.signature(stage.__init__)
    defaults = {name: p.default for name, p in signature.parameters.items() if name != "self"}
    assert defaults and set(defaults.values()) == {None}
    assert set(inspect.signature(stage.setParams).parameters) == set(signature.parameters)
    plain = stage()
    assert not any(plain.isSet(p) for p in plain.params)  # nothing set, all defaulted


def test_pca_reducer_getters_setters_and_set_params():
    reducer = PcaReducer()
    assert (reducer.getK(), reducer.getInputCol(), reducer.getOutputCol()) == (
        DEFAULT_K, "features", "pca")
    assert reducer.setK(5) is reducer and reducer.getK() == 5
    assert reducer.setVariance(0.9).getVariance() == 0.9
    assert reducer.setInputCol("x").setOutputCol("y") is reducer
    assert reducer.setParams(k=7, outputCol="z") is reducer
    assert (reducer.getK(), reducer.getInputCol(), reducer.getOutputCol()) == (7, "x", "z")
    assert PcaReducer(k=3, variance=0.5).getVariance() == 0.5


def test_pca_reducer_copy_takes_extra_params_and_leaves_the_original():
    reducer = PcaReducer(k=4)
    other = reducer.copy({reducer.k: 9})
    assert other.getK() == 9 and reducer.getK() == 4 and other.uid == reducer.uid


def test_a_model_reports_the_k_it_holds_and_spark_mls_fitted_attributes():
    model = PcaReducerModel(basis(2))
    assert model.getK() == 2 == model.basis.k
    assert model.pc.numRows == 3 and model.pc.numCols == 2
    assert np.array_equal(model.pc.toArray(), np.eye(3)[:, :2])
    assert model.explainedVariance.toArray().tolist() == [0.5, 0.3]
    assert model.mean.toArray().tolist() == [1.0, 2.0, 3.0]
    assert model.std.toArray().tolist() == [1.0, 0.5, 2.0]
    assert model.setInputCol("x").setOutputCol("y") is model
    assert (model.getInputCol(), model.getOutputCol()) == ("x", "y")


def test_a_model_copy_shares_the_read_only_basis_not_the_params():
    model = PcaReducerModel(basis(2))
    other = model.copy({model.outputCol: "reduced"})
    assert other.getOutputCol() == "reduced" and model.getOutputCol() == "pca"
    assert other.basis is model.basis and other.getK() == 2
    with pytest.raises(ValueError):
        other.basis.mean[0] = 0.0


class FakeFeaturizer:
    """Stands for the CNN featurizer: records its batch size and whether it was closed."""

    def __init__(self, backbone, weights, batch_size, **options):
        self.batch_size, self.closed = batch_size, False

    def close(self):
        self.closed = True


@pytest.fixture
def fake_cnn(monkeypatch):
    monkeypatch.setattr(featurizing, "Featurizer", FakeFeaturizer)
    monkeypatch.setattr(backbones, "load_weights", lambda backbone, spec, context: object())


def test_new_settings_free_the_old_weights_broadcast(fake_cnn, tmp_path):
    stage = ImageFeaturizer(batchSize=8, cacheDir=str(tmp_path))
    first = stage.featurizer()
    assert stage.featurizer() is first  # same settings: loaded and broadcast once
    stage.set(stage.batchSize, 16)
    second = stage.featurizer()
    assert first.closed and not second.closed and second.batch_size == 16
    stage.close()
    assert second.closed
    assert stage.featurizer() is not second  # usable again after close()


def test_a_featurizer_copy_has_weights_of_its_own(fake_cnn, tmp_path):
    stage = ImageFeaturizer(cacheDir=str(tmp_path))
    mine = stage.featurizer()
    copied = stage.copy()
    theirs = copied.featurizer()
    assert theirs is not mine
    copied.close()
    assert theirs.closed and not mine.closed and stage.featurizer() is mine


def test_image_featurizer_getters_setters_and_set_params():
    stage = ImageFeaturizer()
    assert (stage.getInputCol(), stage.getOutputCol(), stage.getWeights()) == (
        "content", "features", "auto")
    assert (stage.getDigestCol(), stage.getErrorKindCol(), stage.getErrorCol()) == (
        "digest", "error_kind", "error")
    assert stage.setBatchSize(8).setPrecision("bfloat16").setWeights("random") is stage
    assert stage.setBackbone("efficientnet_lite0").setCacheDir("/tmp/c") is stage
    assert stage.setDigestCol("sha").setErrorKindCol("why").setErrorCol("message") is stage
    assert stage.setParams(inputCol="bytes", outputCol="cnn") is stage
    assert (stage.getBatchSize(), stage.getPrecision(), stage.getWeights(), stage.getCacheDir(),
            stage.getInputCol(), stage.getOutputCol(), stage.getDigestCol(),
            stage.getErrorKindCol(), stage.getErrorCol()) == (
        8, "bfloat16", "random", "/tmp/c", "bytes", "cnn", "sha", "why", "message")


def test_the_weights_param_offers_only_what_the_stage_can_fetch():
    assert "s3" not in ImageFeaturizer.weights.doc
