"""The operator console: one self-contained page (no external assets)."""

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self' data:")
PAGE = "<!doctype html><title>mediagate host console</title>"
