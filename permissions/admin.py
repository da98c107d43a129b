"""Nothing is registered in the Django admin on purpose: roles, memberships, grants and module
toggles change only through the services (delegation checks and audit), i.e. the tenant-admin
pages and the API. The admin site is shared with the platform host, where these tenant tables
do not exist."""
