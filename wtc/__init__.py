"""wtc: learn CMS workflow recovery actions from WTC-Console operator history."""

__version__ = "0.1.0"
