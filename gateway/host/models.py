"""Host-management tables (paired clients, library entries, pending devices).

None yet: the host issue adds them with their own migration branch `host`.
"""
