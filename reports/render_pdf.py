"""HTML -> PDF with WeasyPrint.

Why WeasyPrint: it prints our own HTML and CSS (paged media: @page size, running footers,
page counters) in-process through Pango, embeds subsets of the fonts it used, draws inline SVG
natively, and needs no browser at run time. A headless Chromium would also print the HTML but is
a ~300 MB process per pack and embeds fonts less predictably.
"""

from __future__ import annotations

import logging

from vigil.errors import VigilError


class RenderError(VigilError):
    """The PDF could not be produced (missing system library, bad document)."""


def render_pdf(html: str) -> bytes:
    """Print ``html`` (whose CSS sets the page size) to PDF bytes."""
    try:
        from weasyprint import HTML
    except OSError as exc:  # Pango/HarfBuzz missing: name the Debian packages
        raise RenderError(
            f"WeasyPrint cannot load its system libraries ({exc}); install them with "
            "scripts/system-deps.sh (Debian: libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b)"
        ) from exc
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)

    from weasyprint import URLFetcher

    # The pack is self-contained: only data: URIs may be read, never the network or disk.
    fetcher = URLFetcher(allowed_protocols={"data"}, timeout=1)
    return HTML(string=html, url_fetcher=fetcher).write_pdf()
