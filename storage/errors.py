"""Domain errors of the storage layer, mapped to HTTP and exit codes only at the edges."""


class StoreError(Exception):
    """Base class of storage errors."""


class NotFound(StoreError):
    """The key does not exist."""


class StoreUnavailable(StoreError):
    """The store did not answer (network, timeout, 5xx). Retry later."""


class Unsupported(StoreError):
    """The operation makes no sense for this store (e.g. presigning a local file)."""


class InvalidKey(StoreError):
    """The key is not a safe relative path inside the store."""


class Conflict(StoreError):
    """A conditional write found the object changed, made or removed since it was read."""
