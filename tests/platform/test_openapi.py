"""The API schema is generated without drf-spectacular warnings or errors: a warning there means
a component named twice (one silently replaces the other in the schema clients read), an operation
id used twice, or a view the generator could not describe."""
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


def test_schema_generates_cleanly():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(urlconf="kam.urls_tenant").get_schema(request=None, public=True)
    validate_schema(schema)
    assert dict(GENERATOR_STATS._warn_cache) == {}
    assert dict(GENERATOR_STATS._error_cache) == {}
    assert "ReportUnit" in schema["components"]["schemas"]
    assert "UnitRef" in schema["components"]["schemas"]
