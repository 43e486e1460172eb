"""The operator console at `GET /api/v1/console`: one self-contained page (no external
assets) over the management API. It asks for the management token (kept in the tab's
sessionStorage) and polls: the GameStream PIN prompt, native pairing, paired and pending
devices, and stats capture with live charts (inline SVG) and the saved recordings."""

from pathlib import Path

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self' data:")

PAGE = Path(__file__).with_name("console.html").read_text(encoding="utf-8")
