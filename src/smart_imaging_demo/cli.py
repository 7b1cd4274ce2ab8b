"""The ``demo`` and ``samples`` commands."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path("demo-data")
SAMPLES_MARKER = ".samples-complete"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="run the whole SMART Imaging demo on one port")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    demo.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="state, keys and sample studies (default ./demo-data)"
    )
    demo.add_argument(
        "--base-url",
        help="the one public URL (default: URLs follow the name each request used, e.g. "
        "http://localhost:PORT or http://127.0.0.1:PORT)",
    )
    demo.add_argument(
        "--dynamic-upstream-allow",
        action="append",
        metavar="HOST[:PORT]",
        help="hosts /dyn/ configs may reach (default: this machine only)",
    )
    demo.set_defaults(handler=run_demo)

    samples = commands.add_parser("samples", help="write the demo's sample DICOM studies")
    samples.add_argument("--out", type=Path, default=Path("samples"))
    samples.set_defaults(handler=run_samples)


def run_samples(args: argparse.Namespace) -> int:
    from .samples.generate import write_samples

    started = time.perf_counter()
    files = write_samples(args.out)
    print(f"{len(files)} files in {args.out} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


def ensure_samples(samples: Path) -> None:
    """Generate the sample studies on first run (a marker file records completion)."""
    from .samples.generate import write_samples

    if (samples / SAMPLES_MARKER).exists():
        return
    print(f"First run: writing sample studies to {samples} ...", file=sys.stderr)
    files = write_samples(samples)
    (samples / SAMPLES_MARKER).write_text(f"{len(files)}\n")


def run_demo(args: argparse.Namespace) -> int:
    import uvicorn

    from smart_imaging.logging_setup import configure

    from .app import create_demo_app

    configure("info")
    base_url = (args.base_url or internal_base(args.host, args.port)).rstrip("/")
    try:
        ensure_samples(args.data / "samples")
    except KeyboardInterrupt:  # the marker is not written: the next run completes the samples
        print("\nInterrupted while writing samples.", file=sys.stderr)
        return 130
    allow = tuple(args.dynamic_upstream_allow or ("localhost", "127.0.0.1", "[::1]"))
    derive = args.base_url is None
    app = create_demo_app(base_url, args.data, dynamic_upstream_allow=allow, derive_from_request=derive)
    print(banner(base_url, derived=derive), file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, access_log=False, log_config=None, timeout_graceful_shutdown=3
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after its shutdown
        uvicorn.Server(config).run()
    return 0


def internal_base(host: str, port: int) -> str:
    """Where the demo reaches itself (the imaging server calls the sandbox): ``localhost``
    for a loopback or wildcard interface, else that interface."""
    if host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""):
        return f"http://localhost:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def banner(base: str, *, derived: bool = False) -> str:
    names = "  (URLs follow the name you use: localhost, 127.0.0.1, ...)" if derived else ""
    return "\n".join(
        [
            "",
            "smart-imaging demo is running",
            f"  Viewer app             {base}/",
            f"  EHR sandbox (SMART)    {base}/ehr/fhir   (discovery: /.well-known/smart-configuration)",
            f"  Imaging FHIR endpoint  {base}/demo/fhir  (tokens from the sandbox, introspected)",
            f"  Dual-launch endpoint   {base}/dual/fhir  (its own authorization server at /dual/oauth)",
            f"  Open debug tenant      {base}/open/fhir/ImagingStudy  (no token needed)",
            f"  Dynamic tenants        {base}/dyn/{{base64url(config)}}/fhir",
            *([names] if names else []),
            "Press Ctrl-C to stop.",
            "",
        ]
    )
