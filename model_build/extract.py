"""Read and write an extract folder: `<table>.csv` or `<table>.parquet` per contract table.

Reading yields every cell as text ("" = missing), whatever the file format, so that validation
judges CSV and Parquet by one set of rules. Whole-file problems raise `ExtractError`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from model_build.schema import TABLE_ORDER, TABLES, Table

FORMATS = ("csv", "parquet")


class ExtractError(ValueError):
    """A problem with a whole file: the file and, where it applies, the column are named."""

    def __init__(self, code: str, file: str, message: str, column: str | None = None):
        self.code, self.file, self.column = code, file, column
        where = f"{file}" + (f", column '{column}'" if column else "")
        super().__init__(f"{where}: {message} [{code}]")

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "file": self.file, "column": self.column, "message": str(self)}


@dataclass
class RawTable:
    """One table as read: text cells, the file it came from, and columns the contract does not know."""

    name: str
    file: str
    frame: pd.DataFrame
    unknown_columns: list[str]


def table_file(folder: Path, table: str) -> Path:
    """The one file holding `table` in `folder`; an error if there is none or more than one."""
    found = [folder / f"{table}.{fmt}" for fmt in FORMATS if (folder / f"{table}.{fmt}").is_file()]
    if not found:
        raise ExtractError("missing_table", f"{table}.csv", f"no {table}.csv or {table}.parquet in the extract")
    if len(found) > 1:
        raise ExtractError("ambiguous_table", found[0].name, f"both {table}.csv and {table}.parquet exist")
    return found[0]


def read_extract(folder: str | Path) -> dict[str, RawTable]:
    """Read the three contract tables of an extract folder as text."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExtractError("missing_extract", str(folder), "extract folder does not exist")
    return {name: read_table(table_file(folder, name), TABLES[name]) for name in TABLE_ORDER}


def read_table(path: Path, table: Table) -> RawTable:
    """Read one table file as text cells and check its header against the contract."""
    frame = _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    header = list(frame.columns)
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise ExtractError("duplicate_column", path.name, "column appears more than once", duplicated[0])
    for column in table.columns:
        if column.name not in frame.columns:
            if column.required:
                raise ExtractError("missing_column", path.name, "required column is missing", column.name)
            frame[column.name] = ""
    unknown = [c for c in header if c not in table.column_names]
    return RawTable(table.name, path.name, frame[list(table.column_names)], unknown)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExtractError("bad_encoding", path.name, f"not UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise ExtractError("unreadable_file", path.name, exc.strerror or "cannot read") from None
    if not text.strip():
        raise ExtractError("empty_file", path.name, "file is empty (no header row)")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise ExtractError("unreadable_file", path.name, f"not a valid CSV table ({type(exc).__name__})") from None
    frame.columns = [_original_header(c) for c in frame.columns]
    return frame


def _original_header(column: str) -> str:
    """pandas renames a repeated header 'x' to 'x.1'; undo it so duplicates are reported, not hidden."""
    base, dot, suffix = column.rpartition(".")
    return base if dot and suffix.isdigit() and base else column


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ExtractError("unreadable_file", path.name, f"not a valid Parquet file ({type(exc).__name__})") from None
    return pd.DataFrame({name: _as_text(arrow.column(i).to_pandas()) for i, name in enumerate(arrow.column_names)})


def _as_text(values: pd.Series) -> pd.Series:
    """Typed Parquet values as the text a CSV would hold: booleans lower-case, dates ISO, missing empty."""
    missing = values.isna()
    if pd.api.types.is_bool_dtype(values):
        text = values.map({True: "true", False: "false"})
    elif pd.api.types.is_datetime64_any_dtype(values):
        text = values.dt.strftime("%Y-%m-%d")
    elif pd.api.types.is_float_dtype(values):
        text = values.map(repr)
    else:
        text = values.map(_value_text)
    return text.where(~missing, "").astype(object)


def _value_text(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]  # date or datetime -> YYYY-MM-DD
    return str(value)


def write_extract(tables: dict[str, pd.DataFrame], folder: str | Path, fmt: str = "csv") -> dict[str, Path]:
    """Write typed tables as an extract folder (contract formats: ISO dates, true/false, empty = missing)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame in tables.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "csv":
            _to_contract_text(frame).to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        written[name] = path
    return written


def _to_contract_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name, values in frame.items():
        if pd.api.types.is_bool_dtype(values):
            out[name] = values.map({True: "true", False: "false"}).astype(object).where(values.notna(), "")
        elif pd.api.types.is_datetime64_any_dtype(values):
            out[name] = values.dt.strftime("%Y-%m-%d").where(values.notna(), "")
        else:
            out[name] = values
    return pd.DataFrame(out)
