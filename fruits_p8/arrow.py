"""list<float> Arrow columns to numpy matrices and back, with one policy for every reader.

A feature or PCA column is a list<float> per row, all rows the same width. Reading it as a
matrix refuses a null row and a row of another width: skipping one (as `flatten()` does) or
reshaping around it would move every later row's values onto the wrong row, silently.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def list_to_matrix(column: pa.Array | pa.ChunkedArray, dim: int | None = None,
                   dtype: type = np.float32, name: str = "column") -> np.ndarray:
    """The (rows, dim) matrix of a list<float> column; `dim` None: the rows' common width.

    >>> import pyarrow as pa
    >>> list_to_matrix(pa.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    >>> list_to_matrix(pa.array([[1.0, 2.0], [3.0]]), name="features")
    Traceback (most recent call last):
    ...
    ValueError: features rows must hold equally many values each, found 1 to 2
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    rows = len(column)
    if column.null_count:
        raise ValueError(f"{name} has {column.null_count} null rows: no values to read")
    width = dim or 0
    if rows:
        span = pc.min_max(pc.list_value_length(column))
        low, high = span["min"].as_py(), span["max"].as_py()
        width = low if dim is None else dim
        if not low == high == width:
            raise ValueError(f"{name} rows must hold {'equally many' if dim is None else dim} "
                             f"values each, found {low} to {high}")
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.astype(dtype, copy=False).reshape(rows, width)


def matrix_to_list(matrix: np.ndarray, missing: np.ndarray | None = None) -> pa.ListArray:
    """A list<float> column (float32) of the matrix's rows; rows where `missing` is True
    come out null (their values are not stored).

    >>> import numpy as np
    >>> matrix_to_list(np.eye(2), missing=np.array([False, True])).to_pylist()
    [[1.0, 0.0], None]
    """
    rows, width = matrix.shape
    if missing is None:
        offsets = np.arange(rows + 1, dtype=np.int32) * width
        return pa.ListArray.from_arrays(pa.array(offsets), _values(matrix))
    missing = np.asarray(missing, dtype=bool)
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(np.where(missing, 0, width), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), _values(matrix[~missing]),
                                    mask=pa.array(missing))


def _values(matrix: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1),
                    type=pa.float32())
