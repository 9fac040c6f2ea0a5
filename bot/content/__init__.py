"""Loading, validating and rendering the clinician-edited texts under `content/`."""

from bot.content.catalog import Catalog, ContentError, load_catalog

__all__ = ["Catalog", "ContentError", "load_catalog"]
