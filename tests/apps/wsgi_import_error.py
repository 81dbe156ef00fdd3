"""For the launcher tests: a module whose import fails."""

raise RuntimeError("this module fails to import on purpose")
