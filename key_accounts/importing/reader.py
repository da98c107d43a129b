"""Reading an uploaded file as rows of text cells, streamed: CSV in any common encoding, XLSX.

CSV: the encoding is taken from the spec or detected from the start of the file (a byte-order
mark: UTF-8-SIG or UTF-16; else UTF-8 when the first megabyte is valid UTF-8, else GB18030, the
superset of GBK/GB2312 that Chinese Excel writes). Lines are decoded one by one, so bytes that
are not in that encoding further down stop the read with an error naming their line. XLSX:
openpyxl in read-only mode (rows stream from the zip, the sheet is never loaded whole); numbers
and dates become the text a person would type.

``open_table(path, name, spec)`` gives a Table: ``header`` (list of names), ``rows`` (an
iterator of ``(line, cells)``; line 1 is the header) and ``encoding``. Problems that make the
whole file unreadable raise FileProblem(line, reason).
"""
import codecs
import csv
import datetime
import decimal
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

SNIFF_BYTES = 1 << 20
CSV_FIELD_LIMIT = 1 << 20  # one cell; the default 128 KiB is too small for pasted notes


class FileProblem(Exception):
    def __init__(self, line, reason):
        super().__init__(reason)
        self.line, self.reason = line, reason


@dataclass
class Table:
    header: list
    rows: object  # iterator of (line, cells)
    encoding: str
    total_estimate: int  # data rows, for progress before the file is read
    close: object  # closes the file (also done when ``rows`` is read to the end)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def kind_of(name):
    suffix = Path(name or "").suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".csv", ".txt", ".tsv", ""):
        return "csv"
    return None


def open_table(path, name, spec):
    kind = kind_of(name)
    if kind == "xlsx":
        return _xlsx(path, spec.get("sheet") or "")
    if kind == "csv":
        return _csv(path, spec.get("encoding") or "auto", spec.get("delimiter") or ",")
    raise FileProblem(0, _("Only CSV and XLSX files can be imported."))


# --- CSV ------------------------------------------------------------------------------------

def detect_encoding(head):
    """The encoding of a file starting with the bytes ``head``."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    failures = []
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)  # a character cut at the end is fine
            return encoding
        except UnicodeDecodeError as exc:
            failures.append((exc.start, encoding))
    # Neither: name the place where the encoding that got furthest broke down.
    position, encoding = max(failures)
    line = head.count(b"\n", 0, position) + 1
    raise FileProblem(line, _(
        "Line %(line)d is not valid %(encoding)s (byte 0x%(byte)02x), nor is the file GB18030 or UTF-8: save it as "
        "UTF-8 CSV and try again."
    ) % {"line": line, "encoding": encoding.upper(), "byte": head[position]})


def _decoded_lines(handle, encoding):
    """Decode line by line, naming the line of the first undecodable byte. UTF-8 and GB18030
    never use the byte 0x0A inside a character, so splitting bytes at newlines is safe."""
    decode = codecs.getdecoder(encoding)
    line = 0
    for raw in handle:
        line += 1
        try:
            yield decode(raw)[0]
        except UnicodeDecodeError as exc:
            raise FileProblem(line, _(
                "Line %(line)d is not valid %(encoding)s (byte 0x%(byte)02x at character %(position)d). Save "
                "the file as UTF-8, or choose the encoding it was saved in."
            ) % {"line": line, "encoding": encoding.upper(), "byte": raw[exc.start], "position": exc.start + 1}) from None


def _count_lines(path):
    count = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            count += block.count(b"\n")
    return count


def _csv(path, encoding, delimiter):
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if encoding == "auto":
        encoding = detect_encoding(head)
    if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"

    if encoding == "utf-16":
        # Not byte-line safe: decode as a stream (Excel's "Unicode text" is UTF-16 and tab-separated).
        handle = open(path, encoding="utf-16", newline="")
        lines = handle
        if delimiter == ",":
            delimiter = "\t"
    else:
        handle = open(path, "rb")
        lines = _decoded_lines(handle, encoding)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise FileProblem(1, _("The file is empty.")) from None
    except csv.Error as exc:
        handle.close()
        raise FileProblem(1, _("Line 1 cannot be read as CSV: %(error)s") % {"error": exc}) from None
    header = [name.strip().lstrip("\ufeff") for name in header]

    def rows():
        start = reader.line_num + 1
        try:
            for cells in reader:
                if cells:  # a blank line
                    yield start, cells
                start = reader.line_num + 1
        except csv.Error as exc:
            raise FileProblem(start, _("Line %(line)d cannot be read as CSV: %(error)s") % {"line": start, "error": exc}) from None
        except UnicodeDecodeError:  # only the UTF-16 stream decodes here; the others per line
            raise FileProblem(start, _("Line %(line)d is not valid %(encoding)s.") % {
                "line": start, "encoding": encoding.upper()}) from None
        finally:
            handle.close()

    return Table(header, rows(), encoding, max(_count_lines(path) - 1, 0), handle.close)


# --- XLSX -----------------------------------------------------------------------------------

def _cell_text(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        # 29.85 stays 29.85 (repr is the shortest exact text); 12.0 becomes 12.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time, int, decimal.Decimal)):
        return str(value) if not hasattr(value, "isoformat") else value.isoformat()
    return str(value)


def _xlsx(path, sheet):
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileProblem(0, _("The file is not a readable XLSX workbook (%(error)s).") % {"error": exc}) from None
    if sheet and sheet not in book.sheetnames:
        book.close()
        raise FileProblem(0, _("The workbook has no sheet named %(sheet)s.") % {"sheet": sheet})
    ws = book[sheet] if sheet else book.worksheets[0]
    it = ws.iter_rows(values_only=True)
    try:
        header = next(it)
    except StopIteration:
        book.close()
        raise FileProblem(1, _("The file is empty.")) from None
    header = [_cell_text(value).strip() for value in header]
    while header and not header[-1]:
        header.pop()
    total = max((ws.max_row or 1) - 1, 0)

    def rows():
        try:
            for line, values in enumerate(it, start=2):
                cells = [_cell_text(value) for value in values]
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    yield line, cells
        finally:
            book.close()

    return Table(header, rows(), "xlsx", total, book.close)


def sample(path, name, spec, count=5):
    """The header, the first ``count`` rows and the encoding (the wizard's mapping step)."""
    with open_table(path, name, spec) as table:
        rows = []
        for _line, cells in table.rows:
            rows.append(cells)
            if len(rows) >= count:
                break
        return table.header, rows, table.encoding
