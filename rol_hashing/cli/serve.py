"""``rol-hashing serve RUN [--compare SSDH_RUN]``: the run's gallery from a web page and an
HTTP API (``rol_hashing/serve``), served by waitress."""

from __future__ import annotations

import argparse
import sys

from rol_hashing.cli.options import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``serve``."""
    p = subparsers.add_parser(
        "serve",
        help="search a trained run from a web page and an HTTP API",
        description="Loads the run's model, index and gallery once, then serves GET / (the "
        "page), POST /api/search, POST /api/mask, GET /api/health and GET /thumbs/<id>.",
    )
    p.add_argument("run", help="a trained hashing run folder (its index is built if needed)")
    p.add_argument("--compare", help="a second run of the same gallery, shown side by side")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (others: a warning)")
    p.add_argument("--port", type=positive_int, default=8000, help="port")
    p.add_argument("--threads", type=positive_int, default=4, help="request threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from waitress import serve  # lazy: the server only when serving

    from rol_hashing.serve.app import create_app  # lazy: TensorFlow
    from rol_hashing.serve.service import load_services  # lazy: TensorFlow

    services = load_services(args.run, args.compare)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {args.host}: anyone who can reach this address can search "
            "the gallery and see its images",
            file=sys.stderr,
        )
    served = ", ".join(f"{m}: {s.run.path}" for m, s in services.items())
    print(f"serving {served} on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    serve(create_app(services), host=args.host, port=args.port, threads=args.threads)
    return 0
