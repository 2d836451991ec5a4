"""list<float> columns <-> numpy: one policy for the report's rows, the projection and the
moments pass (a null or short row is refused, never skipped or reshaped around)."""

import numpy as np
import pyarrow as pa
import pytest

from fruits_p8.arrow import list_to_matrix, matrix_to_list
from fruits_p8.reduce.moments import Moments
from fruits_p8.reduce.spark_ml import partition_moments


def floats(rows):
    return pa.array(rows, pa.list_(pa.float32()))


def test_a_column_reads_as_a_matrix_chunked_sliced_or_empty():
    column = pa.chunked_array([floats([[1, 2], [3, 4]]), floats([[5, 6]])])
    assert list_to_matrix(column).tolist() == [[1, 2], [3, 4], [5, 6]]
    assert list_to_matrix(floats([[1, 2], [3, 4], [5, 6]]).slice(1), 2).tolist() == [[3, 4],
                                                                                     [5, 6]]
    assert list_to_matrix(column, dtype=np.float64).dtype == np.float64
    assert list_to_matrix(pa.chunked_array([], pa.list_(pa.float32())), 3).shape == (0, 3)
    assert list_to_matrix(floats([])).shape == (0, 0)


def test_a_null_short_or_uneven_row_is_refused():
    with pytest.raises(ValueError, match="pca has 1 null rows"):
        list_to_matrix(floats([[1, 2], None]), name="pca")
    with pytest.raises(ValueError, match="3 values each"):
        list_to_matrix(floats([[1, 2, 3], [1, 2]]), 3)
    with pytest.raises(ValueError, match="equally many"):
        list_to_matrix(floats([[1, 2], [1, 2, 3, 4]]))


def test_a_matrix_goes_back_to_a_column_with_its_missing_rows_null():
    matrix = np.arange(6, dtype=np.float64).reshape(3, 2)
    column = matrix_to_list(matrix)
    assert column.type == pa.list_(pa.float32())
    assert list_to_matrix(column).tolist() == matrix.tolist()
    holes = matrix_to_list(matrix, missing=np.array([False, True, False]))
    assert holes.to_pylist() == [[0.0, 1.0], None, [4.0, 5.0]]


def test_the_moments_pass_refuses_a_null_row_instead_of_skipping_it():
    # on fc8355e `flatten()` dropped the null row: the moments counted 1 row of 2
    batch = pa.RecordBatch.from_arrays([floats([[1, 2], None])], names=["features"])
    with pytest.raises(ValueError, match="1 null rows"):
        list(partition_moments("features", 2, iter([batch])))
    good = pa.RecordBatch.from_arrays([floats([[1, 2], [3, 4]])], names=["features"])
    [row] = list(partition_moments("features", 2, iter([good])))
    moments = Moments.from_bytes(row.column(0)[0].as_py(), 2)
    assert moments.n == 2 and moments.total.tolist() == [4.0, 6.0]


def test_the_moments_pass_refuses_a_short_row_instead_of_shifting_the_others():
    # on fc8355e 5 values reshaped as rows of 2 failed only by luck of the total; 6 values
    # in rows of 3 and 1 went through as two rows of 2: wrong moments, no error
    batch = pa.RecordBatch.from_arrays([floats([[1, 2, 3], [4]])], names=["features"])
    with pytest.raises(ValueError, match="2 values each"):
        list(partition_moments("features", 2, iter([batch])))
