"""The one image model every transport speaks: ``Layer`` and ``Image`` (see api.py)."""
