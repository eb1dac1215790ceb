"""Arrow string columns for the generator's two big event tables (GA4 and Klaviyo events).

Their text is built by Arrow kernels from small lookup tables and integer codes, so hundreds of
thousands of rows never become Python ``str`` objects: generating them is faster, and the frames
reach the loader already Arrow-backed (pandas ``ArrowDtype`` columns), which lands them without
converting a value. The strings are exactly what %-formatting the same values gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

STRING = pd.ArrowDtype(pa.string())


def strings(values: Sequence) -> pa.Array:
    """A small lookup table (a list or object array of str/None) as an Arrow string array."""
    return pa.array(list(values), type=pa.string())


def pick(table: Sequence | pa.Array, index: np.ndarray, valid: np.ndarray | None = None):
    """``table[index]`` as Arrow strings; NULL where ``valid`` is False."""
    table = table if isinstance(table, pa.Array) else strings(table)
    index = np.asarray(index, dtype=np.int64)
    if valid is not None:
        index = pa.array(np.where(valid, index, 0), mask=~np.asarray(valid, dtype=bool))
    return table.take(index)


def decimal(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Integers as decimal text (``"%d"``); NULL where ``valid`` is False."""
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64), mask=mask), pa.string())


def concat(*parts) -> pa.Array:
    """Row-wise concatenation of string arrays and ``str`` constants."""
    return pc.binary_join_element_wise(*parts, "", null_handling="emit_null")


def column(values: pa.Array) -> pd.Series:
    """An Arrow string array as a pandas column (``ArrowDtype``, no copy)."""
    return pd.Series(pd.arrays.ArrowExtensionArray(values), copy=False)


def fill_rows(base: pa.Array, rows: np.ndarray, texts: list[str]) -> pa.Array:
    """``base`` with the values at ``rows`` (ascending positions) replaced by ``texts``."""
    if not len(rows):
        return base
    mask = np.zeros(len(base), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(base, pa.array(mask), strings(texts))
