"""Domain errors of the packager, mapped to exit codes and HTTP statuses only at the edges."""


class PackagerError(Exception):
    """Packaging failed for a reason that is not the input's fault (exit 1)."""


class InvalidInput(PackagerError):
    """The input is missing, empty, not media, corrupt, truncated, unsupported or too long,
    or the asset id is invalid (exit 2 / HTTP 400). The message names the problem."""
