"""Calls tables (apps with hashed secrets, sessions).

None yet: the Calls issue adds them with their own migration branch `calls`.
"""
