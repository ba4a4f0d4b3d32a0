"""Start a bench server the way `cityhub serve` runs the hub: uvicorn with the hub's own
HTTP protocol class (bounded request heads, stalled bodies cut), which uvicorn's command line
cannot name. Both the hub and the bare baseline run through it, so they share every setting.

Usage: python -m bench.launch FACTORY HOST PORT WORKERS
"""

from __future__ import annotations

import sys

import uvicorn

from cityhub.api.protocol import BoundedHttpTools


def main(argv: list[str]) -> None:
    """Serve the factory on host:port with one uvicorn process per worker."""
    factory, host, port, workers = argv
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=int(port),
        loop="uvloop",
        http=BoundedHttpTools,
        workers=int(workers),
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
