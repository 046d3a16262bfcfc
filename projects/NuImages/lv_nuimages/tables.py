"""Reading nuImages v1.0 tables (``<root>/nuimages/<version>/<table>.json``) with every check.

A table is a JSON list of rows, each a dict with a ``token``. A missing or malformed table, a row
without a field the loader needs, or a token that points nowhere is a
:class:`~lv_adapter.data.errors.BadSampleError` naming the file (and the row's token).
"""
import json
import os

from lv_adapter.data.errors import BadSampleError

__all__ = ["TABLES", "field", "read_table", "read_tables", "table_path"]

# The tables the loader reads (the devkit's other five describe sensors, poses and logs).
TABLES = ("category", "sample", "sample_data", "object_ann", "surface_ann")


def table_path(version_dir, name):
    return os.path.join(version_dir, f"{name}.json")


def read_table(version_dir, name):
    """The rows of table ``name`` in ``version_dir``, checked to be dicts with a ``token``."""
    path = table_path(version_dir, name)
    if not os.path.isfile(path):
        raise BadSampleError(path, f"nuImages table {name!r} is missing (expected the v1.0 "
                                   "layout: <root>/nuimages/<version>/<table>.json)")
    try:
        with open(path) as f:
            rows = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadSampleError(path, f"malformed JSON: {e}") from None
    if not isinstance(rows, list):
        raise BadSampleError(path, "a table must be a JSON list of rows, got "
                                   f"{type(rows).__name__}")
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("token"), str):
            raise BadSampleError(path, f"row {index} is not an object with a string 'token'")
    return rows


def read_tables(version_dir):
    """dict table name -> rows, for every table of :data:`TABLES`."""
    return {name: read_table(version_dir, name) for name in TABLES}


def field(row, key, version_dir, table):
    """``row[key]``; a BadSampleError naming the table file and the row's token if it is absent."""
    if key not in row:
        raise BadSampleError(f"{table_path(version_dir, table)}:{row['token']}",
                             f"the row has no {key!r}")
    return row[key]
