"""``network create``'s IPAM without a runtime: the client's consolidation of --subnet/--ip-range/
--gateway/--aux-address, the daemon's gateways and free addresses, config-only templates, in a store
of its own (no container, no netavark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.container.network import ipam
from strata.container.network.allocate import allocate_ip, allocate_ip6
from strata.container.network.define import CreateRequest, create_network
from strata.container.network.manage import inspect_network
from strata.container.network.networks import NetworkStore
from strata.errors import StrataError


def test_consolidate_places_ranges_gateways_and_aux_addresses_by_containment() -> None:
    pools = ipam.consolidate(["fd00:5::/64", "10.5.0.0/24"], ["10.5.0.128/25"], ["fd00:5::9"],
                             {"a": "10.5.0.7", "b": "fd00:5::7"})
    assert [(p.subnet, p.ip_range, p.gateway, p.aux) for p in pools] == [
        ("10.5.0.0/24", "10.5.0.128/25", "", {"a": "10.5.0.7"}),  # IPv4 first, as the daemon keeps them
        ("fd00:5::/64", "", "fd00:5::9", {"b": "fd00:5::7"}),
    ]


@pytest.mark.parametrize(("args", "message"), [
    (([], ["10.1.0.0/25"], [], {}), "every ip-range or gateway must have a corresponding subnet"),
    ((["10.1.0.0/24"], ["10.2.0.0/25"], [], {}), "no matching subnet for range 10.2.0.0/25"),
    ((["10.1.0.0/24"], ["bad"], [], {}), "no matching subnet for range bad"),
    ((["10.1.0.0/24"], [], [], {"r": "10.3.0.1"}), "no matching subnet for aux-address 10.3.0.1"),
    ((["10.1.0.0/24"], [], ["10.9.0.1"], {}), "no matching subnet for gateway 10.9.0.1"),
    ((["10.1.0.0/16", "10.1.2.0/24"], [], [], {}), "multiple overlapping subnet configuration is not allowed"),
])
def test_consolidate_errors_are_the_clients(args: tuple[list[str], list[str], list[str], dict[str, str]],
                                            message: str) -> None:
    with pytest.raises(StrataError) as e:
        ipam.consolidate(*args)
    assert str(e.value) == message


def test_gateway_is_the_first_usable_address_of_the_range() -> None:
    assert ipam.gateway_of("10.5.0.0/24") == "10.5.0.1"
    assert ipam.gateway_of("10.5.0.0/24", "10.5.0.128/25") == "10.5.0.128"  # the range's own first address
    assert ipam.gateway_of("10.5.0.0/24", "10.5.0.0/25") == "10.5.0.1"  # never the subnet's network address
    assert ipam.gateway_of("fd00:5::/64") == "fd00:5::1"
    assert ipam.gateway_of("fd00:5::/64", "fd00:5::100/120") == "fd00:5::100"


def test_addresses_come_from_the_range_and_skip_aux_addresses(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path)
    net = create_network(store, CreateRequest(
        name="ranged", pools=ipam.consolidate(["10.77.0.0/24", "fd00:77::/64"], ["10.77.0.128/25"], [],
                                              {"r": "10.77.0.129", "s": "fd00:77::2"}), ipv6=True))
    assert (net.gateway, net.gateway6) == ("10.77.0.128", "fd00:77::1")
    assert allocate_ip(net, "", []) == "10.77.0.130"  # .128 the gateway, .129 reserved
    assert allocate_ip6(net, "", []) == "fd00:77::3"
    with pytest.raises(StrataError, match="Address already in use"):
        allocate_ip(net, "10.77.0.129", [])
    config = inspect_network(net, [])["IPAM"]["Config"]
    assert config == [{"Subnet": "10.77.0.0/24", "IPRange": "10.77.0.128/25", "AuxiliaryAddresses": {"r": "10.77.0.129"}},
                      {"Subnet": "fd00:77::/64", "AuxiliaryAddresses": {"s": "fd00:77::2"}}]


def test_config_only_template_reserves_nothing_until_a_network_is_made_from_it(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path)
    pools = ipam.consolidate(["10.78.0.0/24"], [], [], {})
    tmpl = create_network(store, CreateRequest(name="tmpl", pools=pools, config_only=True, labels={"a": "b"}))
    assert (tmpl.driver, tmpl.interface, inspect_network(tmpl, [])["ConfigOnly"]) == ("null", "", True)
    made = create_network(store, CreateRequest(name="made", config_from="tmpl"))
    doc = inspect_network(made, [])
    assert (doc["ConfigFrom"], doc["Labels"], doc["IPAM"]["Config"]) == (
        {"Network": "tmpl"}, {"a": "b"}, [{"Subnet": "10.78.0.0/24"}])
    with pytest.raises(StrataError, match="Pool overlaps"):
        create_network(store, CreateRequest(name="again", config_from="tmpl"))
    with pytest.raises(StrataError, match="user specified configurations are not supported"):
        create_network(store, CreateRequest(name="x", config_from="tmpl", labels={"c": "d"}))
