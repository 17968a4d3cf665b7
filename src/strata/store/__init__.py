"""The local store: content-addressed blobs, unpacked layers and image metadata in SQLite."""
