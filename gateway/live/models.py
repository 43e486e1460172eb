"""Live-rooms tables. Rooms are live media state (process memory, media core).

None yet: the live issue adds any it needs with its own migration branch `live`.
"""
