"""Go and Docker compatibility helpers: the exact behaviour of the Go and Docker code strata imitates.

``gotime`` (``time.ParseDuration``, Docker's ``GetTimestamp``), ``units`` (go-units sizes and
durations), ``tabwriter`` (``text/tabwriter``), ``filters`` (Docker's ``--filter`` arguments) and
``neterrors`` (Go's wording of network errors). Nothing here imports other strata code but ``errors``.
"""
