"""Who did it: the context every history snapshot (django-pghistory) carries (R9).

Services wrap their writes in ``acting(actor, unit=..., via=...)``; the database triggers then
attach that context (actor, acting unit, channel) to every event row the statements write. Bulk
paths that bypass Django's cursor wrapper (COPY) call ``attach(cursor)`` inside the same
transaction first.
"""
import contextlib
import json


import pghistory
from pghistory import config, runtime


def actor_metadata(actor, unit=None, via="web", **extra):
    is_user = actor is not None and not isinstance(actor, str)
    return {
        "actor_id": actor.pk if is_user else None,
        "actor": (actor.get_username() if is_user else actor) or "system",
        "unit_id": unit.pk if unit is not None else None,
        "unit": unit.code if unit is not None else "",
        "via": via,
        **extra,
    }


@contextlib.contextmanager
def acting(actor, *, unit=None, via="web", **extra):
    """History context for the writes inside (nests: inner values win)."""
    with pghistory.context(**actor_metadata(actor, unit, via, **extra)):
        yield


def attach(cursor):
    """Set the current context on ``cursor``'s transaction for statements pghistory does not
    see (COPY). Needs an ``acting`` block around it."""
    tracker = getattr(runtime._tracker, "value", None)
    if tracker is None:
        raise RuntimeError("history.attach() needs an acting() context")
    cursor.execute(
        "SELECT set_config('pghistory.context_id', %s, true), set_config('pghistory.context_metadata', %s, true)",
        [str(tracker.id), json.dumps(tracker.metadata, cls=config.json_encoder())],
    )
