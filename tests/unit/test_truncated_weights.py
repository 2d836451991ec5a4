"""A weights file cut short anywhere is a WeightsError (one line, exit 6), never a pickle or
struct error: the torch reader reports damage past the header as TorchFormatError."""

import collections
import pickle

import pytest

from fruits_p8.errors import WeightsError
from fruits_p8.features.backbones import (
    WeightsContext,
    get_backbone,
    lite0_package_file,
    load_weights,
)
from fruits_p8.features.torch_pickle import TorchFormatError, load_state_dict

# Cuts inside the pickled header (where pickle raised UnpicklingError or EOFError), inside a
# storage's 8-byte element count (struct.error) and inside its data.
CUTS = [1, 20, 100, 1000, 2000, 5000, 30000, 40000, 60000, -1]


@pytest.fixture(scope="module")
def weights_bytes():
    return lite0_package_file().read_bytes()


@pytest.mark.parametrize("cut", CUTS)
def test_a_truncated_file_is_a_format_error(weights_bytes, tmp_path, cut):
    path = tmp_path / "w.pth"
    path.write_bytes(weights_bytes[:cut])
    with pytest.raises(TorchFormatError):
        load_state_dict(path)


class Skim(pickle.Unpickler):
    """Reads past the pickled object without building its tensors."""

    def persistent_load(self, pid):
        return None

    def find_class(self, module, name):
        return collections.OrderedDict if name == "OrderedDict" else (lambda *args: None)


def test_a_cut_inside_a_storage_count_is_a_format_error(weights_bytes, tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(weights_bytes)
    with open(path, "rb") as stream:
        for _ in range(3):  # magic, protocol, system info
            pickle.load(stream)
        Skim(stream).load()  # the state dict
        pickle.load(stream)  # the storage keys
        start = stream.tell()
    path.write_bytes(weights_bytes[:start + 3])
    with pytest.raises(TorchFormatError, match="truncated or damaged"):
        load_state_dict(path)


def test_the_cli_reads_it_as_a_weights_error(weights_bytes, tmp_path):
    path = tmp_path / "copy.pth"
    path.write_bytes(weights_bytes[:5000])
    with pytest.raises(WeightsError, match=f"cannot read EfficientNet-Lite0 weights from {path}"):
        load_weights(get_backbone("efficientnet_lite0"), str(path), WeightsContext(tmp_path))
