"""Checks on tenant slugs and host names, with messages that name the field."""
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
HOST_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Names that would collide with the platform's own schemas, hosts or PostgreSQL's.
RESERVED_SLUGS = {"public", "www", "api", "admin", "static", "media", "template", "kam", "kam-template", "information-schema"}


def schema_name_for(slug):
    return "t_" + slug.replace("-", "_")


def validate_slug(slug):
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise ValidationError(
            {"slug": _("Use 3-40 lower-case letters, digits or hyphens, starting with a letter and not ending with a hyphen.")}
        )
    if slug in RESERVED_SLUGS or slug.startswith("pg-"):
        raise ValidationError({"slug": _("“%(slug)s” is reserved.") % {"slug": slug}})


def validate_domain(domain):
    labels = domain.split(".") if isinstance(domain, str) else []
    if not domain or len(domain) > 253 or not all(HOST_LABEL_RE.match(label) for label in labels):
        raise ValidationError({"domain": _("“%(domain)s” is not a valid host name.") % {"domain": domain}})
