"""wtc: learn CMS workflow recovery actions from WTC-Console operator history."""

from wtc.config import register_resolvers

__version__ = "0.1.0"

register_resolvers()
