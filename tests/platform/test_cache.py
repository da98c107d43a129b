"""The Redis cache backend: one redis-py client per pool, and still a working cache."""
import threading

from django.core.cache import cache, caches


def test_one_client_per_pool_and_values_round_trip():
    client = cache._cache.get_client("k")
    assert cache._cache.get_client("other", write=True) is client  # one server: one pool, one client
    cache.set("kam-cache-test", {"a": 1}, 30)
    assert cache.get("kam-cache-test") == {"a": 1}
    assert cache.incr("kam-cache-test-n", 1) if cache.add("kam-cache-test-n", 1, 30) else False
    assert cache.get("kam-cache-test-n") == 2
    cache.delete_many(["kam-cache-test", "kam-cache-test-n"])
    assert cache.get("kam-cache-test") is None


def test_each_thread_has_its_own_cache_object():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(caches["default"]._cache.get_client()))
    thread.start()
    thread.join()
    assert seen and seen[0] is not cache._cache.get_client()
