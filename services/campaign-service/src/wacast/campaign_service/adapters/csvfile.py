"""Reading a CSV of leads one record at a time, from a file that is never loaded whole.

The delimiter (`,`, `;`, tab or `|`) is sniffed from the first few kilobytes; the file must
be UTF-8 (a BOM is fine). Records are numbered like spreadsheet rows: the header is row 1,
the first data record row 2, whatever line breaks quoted fields hold.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import IO

from wacast.campaign_service.domain.lead_row import BadFile, Columns, columns_of

DELIMITERS = ",;\t|"
MAX_FIELD = 64 * 1024

csv.field_size_limit(MAX_FIELD)


def text_of(body: IO[bytes]) -> io.TextIOWrapper:
    body.seek(0)
    return io.TextIOWrapper(body, encoding="utf-8-sig", newline="")


def dialect_of(body: IO[bytes]) -> type[csv.Dialect] | csv.Dialect:
    body.seek(0)
    sample = codecs.getincrementaldecoder("utf-8-sig")(errors="ignore").decode(body.read(16384))
    body.seek(0)
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
    except csv.Error:
        return csv.excel


def count_records(body: IO[bytes]) -> int:
    """Data records in the file (the header not counted); checks the encoding on the way."""
    text = text_of(body)
    try:
        count = sum(1 for _ in csv.reader(text, dialect_of(body))) - 1
    except UnicodeDecodeError as exc:
        raise BadFile("not_utf8", f"the file is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise BadFile("malformed_csv", str(exc)) from None
    finally:
        text.detach()
    return max(0, count)


def records(body: IO[bytes], skip: int = 0) -> tuple[Columns, Iterator[tuple[int, list[str]]]]:
    """The columns, and (row number, fields) of each data record after the first `skip`."""
    dialect = dialect_of(body)
    reader = csv.reader(text_of(body), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise BadFile("empty_file", "the file has no header row") from None
    columns = columns_of(header)

    def rows() -> Iterator[tuple[int, list[str]]]:
        row = 1
        try:
            for fields in reader:
                row += 1
                if row - 1 > skip:
                    yield row, fields
        except csv.Error as exc:
            raise BadFile("malformed_csv", f"row {row + 1}: {exc}") from None

    return columns, rows()
