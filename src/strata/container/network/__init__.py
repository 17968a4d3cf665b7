"""Container networking on netavark: networks in the store, a netns per container, published ports,
``/etc/hosts`` and ``/etc/resolv.conf`` as Docker writes them."""

__all__: list[str] = []
