"""Local environment helpers: the pinned Spark jars and a throwaway PostgreSQL server.

Nothing here is used on EMR / Glue; these modules make a laptop or CI machine self-sufficient.
They use the standard library only, so they also run before the project's virtualenv exists.
"""
