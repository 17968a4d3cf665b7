"""Fixtures that install and start the real peers (placeholder; filled by the peers harness work)."""
