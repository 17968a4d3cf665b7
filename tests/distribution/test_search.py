"""``search`` against a registry answering Docker Hub's ``/v1/search``: the table, ``--limit``,
``--filter stars=/is-official=/is-automated=``, ``--no-trunc``, ``--format``, and Docker's errors."""

from __future__ import annotations

from .conftest import StrataRun
from .faultserver import FaultRegistry

LONG = "Ubuntu is a Debian-based Linux operating system based on free software."
RESULTS: list[dict[str, object]] = [
    {"name": "ubuntu", "description": LONG, "star_count": 15000, "is_official": True, "is_automated": False},
    {"name": "someone/ubuntu-sshd", "description": "sshd\non ubuntu", "star_count": 12, "is_official": False,
     "is_automated": True},
    {"name": "other/ubuntu-tiny", "description": "", "star_count": 3, "is_official": False, "is_automated": False},
]  # fmt: skip


def test_search_v1_table_limit_filters_format(fault_registry: FaultRegistry, strata: StrataRun) -> None:
    reg = fault_registry
    reg.search_results = RESULTS
    h = reg.host
    out = strata("search", f"{h}/ubuntu", check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    names = [ln.split()[0] for ln in out[1:]]
    assert names == ["ubuntu", "someone/ubuntu-sshd", "other/ubuntu-tiny"]
    assert LONG[:44] + "…" in out[1] and LONG not in out[1]  # Docker's 45-column ellipsis
    assert "sshd on ubuntu" in out[2]  # newlines flattened
    cols = out[0].index("STARS"), out[0].index("OFFICIAL"), out[0].index("AUTOMATED")
    assert out[1][cols[0]:].split()[:2] == ["15000", "[OK]"] and out[2][cols[2]:].strip() == "[OK]"

    assert len(strata("search", "--limit", "2", f"{h}/ubuntu", check=True).stdout.splitlines()) == 3
    assert reg.requests[-1][1].endswith("n=2")
    stars = strata("search", "--filter", "stars=10", f"{h}/ubuntu", check=True).stdout.splitlines()
    assert [ln.split()[0] for ln in stars[1:]] == ["ubuntu", "someone/ubuntu-sshd"]
    official = strata("search", "-f", "is-official=true", f"{h}/ubuntu", check=True).stdout.splitlines()
    assert [ln.split()[0] for ln in official[1:]] == ["ubuntu"]
    both = strata("search", "-f", "is-automated=false", "-f", "stars=5", f"{h}/ubuntu", check=True).stdout.splitlines()
    assert [ln.split()[0] for ln in both[1:]] == ["ubuntu"]

    full = strata("search", "--no-trunc", f"{h}/ubuntu", check=True).stdout
    assert LONG in full
    fmt = strata("search", "--format", "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}|{{.IsAutomated}}", f"{h}/ubuntu", check=True)
    assert fmt.stdout.splitlines() == ["ubuntu|15000|true|false", "someone/ubuntu-sshd|12|false|true",
                                       "other/ubuntu-tiny|3|false|false"]  # fmt: skip
    table = strata("search", "--format", "table {{.Name}}\t{{.StarCount}}", "--limit", "1", f"{h}/ubuntu", check=True)
    assert table.stdout.splitlines()[0].split() == ["NAME", "STARS"]

    bad_limit = strata("search", "--limit", "0", f"{h}/ubuntu")
    assert (bad_limit.returncode, bad_limit.stderr) == (1, "Error: Limit 0 is outside the range of [1, 100]\n")
    bad_filter = strata("search", "--filter", "color=red", f"{h}/ubuntu")
    assert (bad_filter.returncode, bad_filter.stderr) == (1, "Error: Invalid filter 'color'\n")
    bad_bool = strata("search", "--filter", "is-official=maybe", f"{h}/ubuntu")
    assert bad_bool.returncode == 1 and "Invalid filter 'is-official=maybe'" in bad_bool.stderr
