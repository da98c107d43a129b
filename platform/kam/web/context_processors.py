def tenant(request):
    """The tenant of the host, for the header; None on the platform's own host."""
    current = getattr(request, "tenant", None)
    if current is None or current.schema_name == "public":
        return {"current_tenant": None}
    return {"current_tenant": current}
