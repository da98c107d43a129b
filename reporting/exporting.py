"""A dashboard as an XLSX workbook: what the page shows, one sheet each for the tiles, the trend
and the ranking of child units. The figures are the dashboard's own (reporting/views/_dashboard.py
builds both), so the file is trimmed to the viewer's scope exactly like the page."""
import io

from django.http import HttpResponse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from .views import _dashboard as d

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(sheet, value):
    """Text stays text (a unit named "=..." is never a formula); labels are plain strings."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if value.startswith("="):
            cell = WriteOnlyCell(sheet, value)
            cell.data_type = "s"
            return cell
    return value


def _append(sheet, row):
    sheet.append([_cell(sheet, str(v) if isinstance(v, Promise) else v) for v in row])


def _period(filters):
    first, last = f"{filters.first:%Y-%m}", f"{filters.last:%Y-%m}"
    return first if first == last else f"{first} – {last}"


def _header(sheet, board):
    """Which figures these are: the unit, the period and the filters."""
    _append(sheet, [_("Unit"), board.unit.name, board.unit.code])
    _append(sheet, [_("Period"), _period(board.filters)])
    _append(sheet, [_("Compared with"), _period(board.previous_filters)])
    if board.filters.grades:
        _append(sheet, [_("Grades"), ", ".join(board.filters.grades)])
    if board.filters.industries:
        _append(sheet, [_("Industries"), ", ".join(board.filters.industries)])
    if board.filters.as_of:
        _append(sheet, [_("Org tree as of"), board.filters.as_of.isoformat()])
    if board.product is not None:
        _append(sheet, [_("Product"), board.product.name, board.product.code])
    _append(sheet, [])


def workbook(board):
    """The workbook of ``board`` (a built dashboard)."""
    book = Workbook(write_only=True)
    figures = book.create_sheet(title=str(_("Figures"))[:31])
    _header(figures, board)
    _append(figures, [_("Figure"), _("Value"), _("Previous period"), _("Change"), _("Change (%)")])
    tiles = []
    for tile in board.tiles:
        tiles.append(tile)
        tiles.extend(tile.parts)
    tiles.extend(board.product_tiles)
    for tile in tiles:
        _append(figures, [tile.label, tile.value, tile.previous, tile.change, tile.change_percent])

    trend = book.create_sheet(title=str(_("Trend"))[:31])
    columns = d.TREND_COLUMNS
    _append(trend, [_("Month"), *[d.LABELS[name] for name in columns]])
    for row in board.trend:
        _append(trend, [f"{row['month']:%Y-%m}", *[row[name] for name in columns]])

    ranking = book.create_sheet(title=str(_("Ranking"))[:31])
    columns = d.RANKING_COLUMNS
    _append(ranking, [_("Code"), _("Unit"), *[d.LABELS[name] for name in columns]])
    for row in board.ranking["children"]:
        _append(ranking, [row["unit"].code, row["unit"].name, *[row[name] for name in columns]])
    own = board.ranking["own"]
    _append(ranking, [board.unit.code, _("Own customers of %(unit)s") % {"unit": board.unit.name},
                      *[own[name] for name in columns]])
    _append(ranking, [board.unit.code, _("Total"), *[board.figures[name] for name in columns]])
    return book


def file_name(board):
    return f"dashboard-{board.unit.code}-{board.filters.last:%Y%m}-{timezone.localtime():%Y%m%d-%H%M%S}.xlsx"


def xlsx_response(board):
    buffer = io.BytesIO()
    workbook(board).save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=CONTENT_TYPE)
    # The unit code is the tenant's own text: only safe characters go into the header.
    name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in file_name(board))
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response
