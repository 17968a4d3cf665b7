"""Docker's user-level operations over an ``Engine``, as a program would call them (the CLI is a thin layer on these)."""
