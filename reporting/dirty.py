"""The per-tenant set of dirty (unit, month) keys in Redis, and the flags that coalesce tasks.

A change marks its keys when its transaction commits; the first mark after a drain queues one
refresh task (a flag set with NX), later marks within the same burst only add keys. The task
clears the flag before it takes the keys, so a mark that comes in while it runs queues the next
run. Keys are ``"<unit id>:<YYYY-MM-01>"`` or ``"<unit id>:*"`` (every month of the window).
Redis keys carry the schema first, like the cache's (django_tenants.cache.make_key).
"""
import datetime

import redis
from django.conf import settings

FLAG_TTL = 30  # seconds: a lost task holds later marks back at most this long

_client = None


def client():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    return _client


def _key(schema, name):
    return f"{schema}:{settings.CACHES['default'].get('KEY_PREFIX', '')}:rollup:{name}"


def members(units, months=None):
    if months is None:
        return [f"{unit}:*" for unit in units]
    return [f"{unit}:{month:%Y-%m-01}" for unit in units for month in months]


def parse(raw):
    """``(unit ids, months or None for every month)`` from stored keys."""
    units, months, every = set(), set(), False
    for member in raw:
        unit, _, month = (member.decode() if isinstance(member, bytes) else member).partition(":")
        units.add(int(unit))
        if month == "*":
            every = True
        else:
            months.add(datetime.date.fromisoformat(month))
    return units, None if every else months


def add(schema, keys):
    """Add keys; True when no refresh is queued yet (the caller queues one)."""
    if not keys:
        return False
    pipe = client().pipeline()
    pipe.sadd(_key(schema, "dirty"), *keys)
    pipe.set(_key(schema, "queued"), 1, nx=True, ex=FLAG_TTL)
    _added, first = pipe.execute()
    return bool(first)


def take(schema):
    """Every key, removed at once; the queued flag is cleared first."""
    r = client()
    r.delete(_key(schema, "queued"))
    pipe = r.pipeline()  # MULTI/EXEC: no key is lost between the read and the delete
    pipe.smembers(_key(schema, "dirty"))
    pipe.delete(_key(schema, "dirty"))
    raw, _deleted = pipe.execute()
    return raw


def put_back(schema, raw):
    if raw:
        client().sadd(_key(schema, "dirty"), *raw)


def pending(schema):
    return client().scard(_key(schema, "dirty"))


def claim_full(schema, ttl):
    """True for the first request of a full recompute in ``ttl`` seconds."""
    return bool(client().set(_key(schema, "full"), 1, nx=True, ex=ttl))


def release_full(schema):
    client().delete(_key(schema, "full"))
