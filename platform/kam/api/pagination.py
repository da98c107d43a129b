"""The one pagination style of the API: numbered pages with a total and a hard size cap."""
from rest_framework.pagination import PageNumberPagination


class PagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200  # hard cap: ?page_size=100000 gets 200 rows
