"""The engine: who uses the site, when, for which trips, and what they search, click and book.

Imports nothing from ``src.output`` or ``src.report``: it yields column tables, and each
sink owns its encoding.
"""
