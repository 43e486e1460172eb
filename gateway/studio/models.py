"""Studio tables (API keys, studios, sources, destinations, media, connections, chat).

None yet: the Studio issues add them with their own migration branch `studio`.
"""
