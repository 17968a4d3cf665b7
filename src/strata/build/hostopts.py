"""What the classic builder gives every step container besides its config: ``-m``, ``--memory-swap``,
``-c``, ``--cpu-period``, ``--cpu-quota``, ``--cpuset-cpus``, ``--cpuset-mems``, ``--ulimit``, ``--shm-size``,
``--cgroup-parent`` (HostConfig) and ``--add-host`` (``/etc/hosts``). Docker's daemon checks the limits
when a step creates its container (a RUN's, or the one a metadata step or WORKDIR creates and never
starts), so a cached build never sees them; ``host_config`` checks them there, with the daemon's words.
A rootless build's step containers go without the limits its cgroup cannot take: the daemon's warnings
(``warnings``, made by the CLI) are shown on each step that creates one, as `` ---> [Warning] …``."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["StepHost"]


class StepHost:
    """The flags as the CLI checked them (sizes and numbers parsed, the rest as given)."""

    def __init__(
        self, *, memory: int = 0, memory_swap: int = 0, cpu_shares: int = 0, cpu_period: int = 0,
        cpu_quota: int = 0, cpuset_cpus: str = "", cpuset_mems: str = "", ulimits: list[str] | None = None,
        shm_size: int = 0, cgroup_parent: str = "", add_hosts: list[str] | None = None,
        warnings: list[str] | None = None,
    ) -> None:  # fmt: skip
        self.memory, self.memory_swap, self.cpu_shares = memory, memory_swap, cpu_shares
        self.cpu_period, self.cpu_quota = cpu_period, cpu_quota
        self.cpuset_cpus, self.cpuset_mems = cpuset_cpus, cpuset_mems
        self.ulimits = ulimits if ulimits is not None else []
        self.shm_size, self.cgroup_parent = shm_size, cgroup_parent
        self.add_hosts = add_hosts if add_hosts is not None else []
        self.warnings = warnings if warnings is not None else []  # the daemon's, on each container it creates
        self._checked: dict[str, Any] | None = None

    def limits(self) -> dict[str, Any]:
        """The limits as HostConfig fields, unchecked (what a rootless run may have to discard)."""
        return {"Memory": self.memory, "CpuShares": self.cpu_shares, "CpuPeriod": self.cpu_period,
                "CpuQuota": self.cpu_quota, "CpusetCpus": self.cpuset_cpus, "CpusetMems": self.cpuset_mems}

    def say_warnings(self, say: Callable[[str], None]) -> None:
        """The create warnings as the classic builder shows them, before ``Running in``."""
        for text in self.warnings:
            say(f" ---> [Warning] {text}")

    def host_config(self) -> dict[str, Any]:
        """The HostConfig fields of a step container, checked as the daemon checks a new container's
        (its error raised: the build stops at that step)."""
        if self._checked is None:
            from strata.container.resources import resource_host_config, resource_warnings

            hc = resource_host_config(
                str(self.memory) if self.memory else None,
                "-1" if self.memory_swap == -1 else str(self.memory_swap) if self.memory_swap else None,
                None, self.cpu_shares, self.cpuset_cpus, None, self.ulimits,
                extra={"CpuPeriod": self.cpu_period, "CpuQuota": self.cpu_quota, "CpusetMems": self.cpuset_mems},
            )  # fmt: skip
            resource_warnings(hc)  # the ones these flags can give are the kernel's: none a build shows
            hc["ShmSize"] = self.shm_size
            hc["CgroupParent"] = self.cgroup_parent
            self._checked = hc
        return dict(self._checked)
