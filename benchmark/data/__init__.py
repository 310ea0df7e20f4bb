"""Suite data: manifest parsing, file integrity, image loading, fetch and import.

Nothing here touches the network or the disk at import time; downloads happen only in
:func:`benchmark.data.fetch.fetch_files`, which the ``overfit-bench data fetch`` command calls.
"""
