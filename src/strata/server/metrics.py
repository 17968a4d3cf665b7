"""Request metrics in Prometheus text format (``GET /metrics``)."""

from __future__ import annotations

from collections import defaultdict

__all__ = ["Metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.durations: defaultdict[str, list[int]] = defaultdict(lambda: [0] * (len(_BUCKETS) + 1))
        self.duration_sum: defaultdict[str, float] = defaultdict(float)
        self.bytes_in = 0
        self.bytes_out = 0
        self.in_flight = 0
        self.proxy_enabled = False  # the pull-through cache's counters are shown when it is on
        self.proxy_hits: defaultdict[str, int] = defaultdict(int)  # by "blob" / "manifest"
        self.proxy_misses: defaultdict[str, int] = defaultdict(int)
        self.proxy_upstream_bytes = 0

    def cache_hit(self, kind: str) -> None:
        self.proxy_hits[kind] += 1

    def cache_miss(self, kind: str) -> None:
        self.proxy_misses[kind] += 1

    def observe(self, route: str, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int) -> None:
        self.requests[(route, method, status)] += 1
        buckets = self.durations[route]
        for i, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                buckets[i] += 1
        buckets[-1] += 1
        self.duration_sum[route] += seconds
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out

    def render(self, extra: dict[str, float] | None = None) -> str:
        lines = [
            "# HELP strata_registry_http_requests_total HTTP requests by route, method and status.",
            "# TYPE strata_registry_http_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            lines.append(
                f'strata_registry_http_requests_total{{route="{route}",method="{method}",code="{status}"}} {n}'
            )
        lines += [
            "# HELP strata_registry_http_request_duration_seconds Request latency by route.",
            "# TYPE strata_registry_http_request_duration_seconds histogram",
        ]
        for route, buckets in sorted(self.durations.items()):
            for bound, n in zip(_BUCKETS, buckets, strict=False):
                lines.append(
                    f'strata_registry_http_request_duration_seconds_bucket{{route="{route}",le="{bound}"}} {n}'
                )
            lines.append(f'strata_registry_http_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {buckets[-1]}')
            lines.append(f'strata_registry_http_request_duration_seconds_sum{{route="{route}"}} {self.duration_sum[route]:.6f}')
            lines.append(f'strata_registry_http_request_duration_seconds_count{{route="{route}"}} {buckets[-1]}')
        lines += [
            "# TYPE strata_registry_http_request_bytes_total counter",
            f"strata_registry_http_request_bytes_total {self.bytes_in}",
            "# TYPE strata_registry_http_response_bytes_total counter",
            f"strata_registry_http_response_bytes_total {self.bytes_out}",
            "# TYPE strata_registry_http_in_flight_requests gauge",
            f"strata_registry_http_in_flight_requests {self.in_flight}",
        ]
        if self.proxy_enabled:
            lines += self._render_proxy()
        for name, value in sorted((extra or {}).items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"

    def _render_proxy(self) -> list[str]:
        lines = []
        for name, counts, what in (
            ("hits", self.proxy_hits, "Pulls the pull-through cache served from local storage"),
            ("misses", self.proxy_misses, "Pulls the pull-through cache fetched from an upstream"),
        ):
            lines += [f"# HELP strata_registry_proxy_{name}_total {what}.", f"# TYPE strata_registry_proxy_{name}_total counter"]
            for kind in ("blob", "manifest"):
                lines.append(f'strata_registry_proxy_{name}_total{{type="{kind}"}} {counts[kind]}')
        return [
            *lines,
            "# HELP strata_registry_proxy_upstream_bytes_total Bytes of blobs downloaded from upstreams.",
            "# TYPE strata_registry_proxy_upstream_bytes_total counter",
            f"strata_registry_proxy_upstream_bytes_total {self.proxy_upstream_bytes}",
        ]
