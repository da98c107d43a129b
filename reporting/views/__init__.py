"""Dashboard pages under /reports/ (issue #5 item 5): reporting/urls.py routes them."""
