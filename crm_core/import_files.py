"""Reading an uploaded spreadsheet: CSV (UTF-8 with or without BOM, or UTF-16 as Excel's "Unicode text";
`,` `;` or tab, sniffed; quoted fields with newlines) or XLSX (openpyxl in read-only mode, the first sheet,
cells typed: numbers, dates, booleans).

A file is a header row and data rows numbered as the spreadsheet shows them (the header is row 1). Anything
that is not a readable table within the limits raises `Invalid` with a reason a person can act on; nothing
here touches the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from switchboard.errors import N_, Invalid

MAX_ROWS = 100_000
MAX_COLUMNS = 200
MAX_CELL = 10_000  # characters in one cell; a longer one is not a contact's field
MAX_UNZIPPED = 500 * 1024 * 1024  # an XLSX that inflates past this is a zip bomb, not a contact list
DELIMITERS = (",", ";", "\t")
SNIFF_ROWS = 20
SNIFF_CHARS = 64 * 1024
CSV = "csv"
XLSX = "xlsx"

Cell = str | int | float | bool | dt.date | dt.datetime | None


@dataclass(frozen=True)
class Table:
    """A file's header and, for previews, its first rows; `total` data rows (empty rows not counted)."""

    format: str
    header: list[str]
    sample: list[list[Cell]]
    total: int


@dataclass(frozen=True)
class Row:
    number: int  # as the spreadsheet shows it: the header is row 1
    cells: list[Cell]


def detect_format(data: bytes, filename: str = "") -> str:
    """XLSX by its zip signature, CSV otherwise; old Excel (.xls) and other binaries are refused."""
    if data.startswith(b"PK\x03\x04"):
        return XLSX
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise Invalid(N_("This is an old Excel file (.xls): save it as .xlsx or CSV."), field="file")
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise Invalid(N_("The file is not a valid XLSX workbook."), field="file")
    return CSV


def read_table(data: bytes, fmt: str, *, sample_rows: int = 5) -> Table:
    """Check the whole file (limits, encoding, structure) and return its header and first rows."""
    rows = iter_rows(data, fmt)
    header = next(rows, None)
    if header is None or not any(cell not in (None, "") for cell in header.cells):
        raise Invalid(N_("The file is empty or its first row (the column names) is empty."), field="file")
    sample: list[list[Cell]] = []
    total = 0
    for row in rows:
        total += 1
        if len(sample) < sample_rows:
            sample.append(row.cells)
    if total == 0:
        raise Invalid(N_("The file has column names but no rows."), field="file")
    return Table(fmt, header_names(header.cells), sample, total)


def header_names(cells: list[Cell]) -> list[str]:
    """Column names as text; a column without one is called by its position ("Column 3")."""
    names = []
    for i, cell in enumerate(cells, start=1):
        text = " ".join(_text(cell).split())
        names.append(text or f"Column {i}")
    return names


def iter_rows(data: bytes, fmt: str) -> Iterator[Row]:
    """The header then every non-empty data row, each within the limits (`Invalid` when one is not)."""
    source = _csv_rows(data) if fmt == CSV else _xlsx_rows(data)
    count = 0
    for number, cells in source:
        while cells and cells[-1] in (None, ""):
            cells.pop()
        if number > 1 and not cells:
            continue  # an empty line in the middle or at the end
        if len(cells) > MAX_COLUMNS:
            raise Invalid(
                N_("Row %(row)s has more than %(n)s columns."), field="file", row=number, n=MAX_COLUMNS
            )
        for cell in cells:
            if isinstance(cell, str) and len(cell) > MAX_CELL:
                raise Invalid(
                    N_("Row %(row)s has a cell longer than %(n)s characters."),
                    field="file",
                    row=number,
                    n=MAX_CELL,
                )
        if number > 1:
            count += 1
            if count > MAX_ROWS:
                raise Invalid(N_("At most %(n)s rows in one import."), field="file", n=MAX_ROWS)
        yield Row(number, cells)


# --- CSV ----------------------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise Invalid(
            N_('The file is not UTF-8 text: save it as "CSV UTF-8" or as .xlsx.'), field="file"
        ) from None
    if "\x00" in text:
        raise Invalid(N_("This is not a CSV file: it holds binary data."), field="file")
    return text


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first rows into the most columns, the same number in each row."""
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        try:
            reader = csv.reader(io.StringIO(text[:SNIFF_CHARS]), delimiter=delimiter)
            rows = [r for _, r in zip(range(SNIFF_ROWS), reader, strict=False)]
        except csv.Error:
            continue
        rows = [r for r in rows if any(c.strip() for c in r)]
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(1 for r in rows if len(r) == width)
        score = (consistent if width > 1 else 0, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text), strict=False)
    number = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise Invalid(
                N_("Row %(row)s cannot be read: %(why)s."), field="file", row=number + 1, why=str(exc)[:200]
            ) from None
        number += 1
        yield number, [cell.strip() for cell in record]


# --- XLSX ---------------------------------------------------------------------------------------------------


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    import openpyxl  # a few hundred milliseconds to import: only when someone uploads a workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise Invalid(N_("The file is not a valid XLSX workbook."), field="file") from None
    if inflated > MAX_UNZIPPED:
        raise Invalid(N_("The workbook unpacks to more than %(n)s MB."), field="file", n=MAX_UNZIPPED >> 20)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises whatever the broken part gives (KeyError, ValueError, XML errors)
        raise Invalid(N_("The file is not a valid XLSX workbook."), field="file") from None
    try:
        if not book.worksheets:
            raise Invalid(N_("The workbook has no sheet."), field="file")
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        number = 0
        while True:
            try:
                values = next(rows)
            except StopIteration:
                return
            except Exception:
                raise Invalid(
                    N_("Row %(row)s cannot be read: %(why)s."), field="file", row=number + 1, why="XLSX"
                ) from None
            number += 1
            end = len(values)
            while end and values[end - 1] in (None, ""):  # read-only rows are padded to the sheet's width
                end -= 1
            yield number, [_xlsx_cell(v) for v in values[:end]]
    finally:
        book.close()


def _xlsx_cell(value: Any) -> Cell:
    if value is None or isinstance(value, bool | int | dt.date):
        if isinstance(value, dt.datetime) and value.time() == dt.time(0):
            return value.date()  # a date typed into Excel is a datetime at midnight
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dt.time | dt.timedelta):
        return str(value)
    return str(value).strip()


# --- cells as text ------------------------------------------------------------------------------------------


def _text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, dt.datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell)


def cell_text(cell: Cell) -> str:
    """A cell as a person reads it (dates as ISO, numbers without a trailing .0)."""
    return _text(cell)


def jsonable(cells: list[Cell]) -> list[str]:
    return [_text(c) for c in cells]
