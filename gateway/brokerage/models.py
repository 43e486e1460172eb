"""Punch tables (sessions and their streams) on the shared Base.

None yet: the brokerage issue adds them with their own migration branch `brokerage`.
"""
