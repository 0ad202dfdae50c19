"""An experiment's results as a table: flat records, a pandas DataFrame, CSV and Parquet files.

One record per finished cell: its configuration's columns (nested dicts flattened with dots: ``{"kwargs": {"C": 1}}``
gives the column ``kwargs.C``), then its result's columns (flattened the same way; a result name that is also a
configuration or metadata column becomes ``result.<name>``), then the metadata columns :data:`METADATA_COLUMNS`.
Lists stay values (in CSV and, where a column mixes types, in Parquet they are written as JSON text). Files are
written to a temporary file beside the target and renamed over it, so an error leaves no half-written file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastprobe.exceptions import ArgumentTypeError, MissingDependencyError
from fastprobe.serialization import write_atomically

__all__ = ["METADATA_COLUMNS", "columns_of", "flatten", "records_from_rows", "to_frame", "write_csv", "write_parquet"]

#: The columns every record ends with.
METADATA_COLUMNS: tuple[str, ...] = ("seconds", "version", "started_at", "finished_at", "host", "pid", "cell_key")


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into dotted names (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``); other values are kept.

    Parameters
    ----------
    value : Mapping[str, Any]
    prefix : str, default ""
        Prepended to every name (with a dot).

    Returns
    -------
    dict[str, Any]
    """
    out: dict[str, Any] = {}
    for name, item in value.items():
        column = f"{prefix}.{name}" if prefix else name
        if isinstance(item, Mapping) and item:
            out.update(flatten(item, column))
        else:
            out[column] = item
    return out


def records_from_rows(rows: Iterable[Mapping[str, Any]], order: Sequence[str]) -> list[dict[str, Any]]:
    """Turn result rows of the database into flat records.

    Parameters
    ----------
    rows : iterable of mappings
        As :meth:`ExperimentDatabase.result_rows` returns them (``config`` and ``result`` as JSON text).
    order : sequence of str
        The configuration's names in the order wanted (the rest follow in stored order).

    Returns
    -------
    list[dict[str, Any]]
    """
    records = []
    for row in rows:
        config = json.loads(row["config"])
        ordered = {name: config[name] for name in order if name in config}
        ordered.update((name, value) for name, value in config.items() if name not in ordered)
        record = flatten(ordered)
        taken = set(record) | set(METADATA_COLUMNS)
        for name, value in flatten(json.loads(row["result"])).items():
            record[f"result.{name}" if name in taken else name] = value
        record.update(
            seconds=row["seconds"],
            version=row["version"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            host=row["host"],
            pid=row["pid"],
            cell_key=row["key"],
        )
        records.append(record)
    return records


def columns_of(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return every column of the records, in the order of first appearance, metadata last."""
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(name for name in record if name not in METADATA_COLUMNS))
    return [*seen, *METADATA_COLUMNS]


def to_frame(records: list[dict[str, Any]]) -> Any:
    """Return the records as a pandas DataFrame (pandas must be importable)."""
    import pandas

    return pandas.DataFrame.from_records(records, columns=columns_of(records))


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return _json_text(value)
    return str(value)


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a str or path-like; got {type(path).__name__}")
    return Path(path)


def write_csv(records: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write the records as CSV (a header row; empty for None; lists and dicts as JSON); return the path.

    Parameters
    ----------
    records : list of dict
    path : str or path-like

    Returns
    -------
    pathlib.Path
    """
    target = _check_path(path)
    columns = columns_of(records)

    def write(binary: Any) -> None:
        handle = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        writer = csv.writer(handle)
        writer.writerow(columns)
        for record in records:
            writer.writerow([_text(record.get(name)) for name in columns])
        handle.flush()
        handle.detach()  # the binary file stays open for the atomic writer to sync and close

    write_atomically(target, write, "an experiment's results")
    return target


def write_parquet(records: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write the records as a Parquet file with pyarrow; return the path.

    A column pyarrow cannot type (values of several kinds, such as ints and strs) is written as JSON text.

    Parameters
    ----------
    records : list of dict
    path : str or path-like

    Returns
    -------
    pathlib.Path

    Raises
    ------
    MissingDependencyError
        If pyarrow is not installed.
    """
    target = _check_path(path)
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingDependencyError(
            "writing an experiment's results as Parquet needs the pyarrow package; install it with: pip install pyarrow"
        ) from None
    arrays = {}
    for name in columns_of(records):
        values = [record.get(name) for record in records]
        try:
            arrays[name] = pyarrow.array(values)
        except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, OverflowError):
            arrays[name] = pyarrow.array([None if v is None else _json_text(v) for v in values], pyarrow.string())
    table = pyarrow.table(arrays)
    write_atomically(target, lambda binary: pyarrow.parquet.write_table(table, binary), "an experiment's results")
    return target
