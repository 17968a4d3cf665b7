"""Transports: every place an image can live, each a source (gives an ``Image``) and a sink (takes one)."""
