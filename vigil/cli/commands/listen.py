"""``vigil listen``: the MLLP listener that takes live HL7 v2 feeds from the interface engine."""

from __future__ import annotations

import typer

from vigil.cli.console import err_console


def listen_cmd(
    host: str = typer.Option(None, "--host", help="Address to bind (default: listen_host)."),
    port: int = typer.Option(
        None, "--port", help="TCP port (default: listen_port, 2575; 0 picks a free one)."
    ),
) -> None:
    """Listen for HL7 v2 messages over MLLP and store them; ACK each one once it is committed.

    Runs until SIGTERM or Ctrl-C, then stops accepting, commits and ACKs what it already
    received, and exits. Messages that cannot be parsed or mapped get an AE/AR with an ERR
    segment and go to dead letters (`vigil deadletters list`). Refuses to start with the public
    demo secrets unless VIGIL_DEMO=1.
    """
    import asyncio
    import signal

    from connectors.mllp import MLLPListener
    from connectors.pipeline import Pipeline
    from connectors.store_writer import StoreWriter
    from vigil.settings import get_settings
    from vigil.store.db import open_store

    settings = get_settings()
    settings.require_production_secrets()
    engine = open_store(settings)
    writer = StoreWriter(engine, settings.deadletter_key.get_secret_value())
    pipeline = Pipeline(settings)
    host = host or settings.listen_host
    port = settings.listen_port if port is None else port

    async def main() -> None:
        listener = MLLPListener(writer, pipeline, max_message_bytes=settings.max_message_bytes)
        bound = await listener.start(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # The exact line tests and service managers wait for.
        print(f"listening on {host}:{bound}", flush=True)
        await stop.wait()
        err_console.print("stopping: finishing messages in flight")
        await listener.shutdown()
        s = listener.stats
        err_console.print(
            f"stopped: {s.connections} connection(s), {s.frames} frame(s), "
            f"{s.commits} commit(s), outcomes {dict(sorted(s.outcomes.items()))}"
        )

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.command("listen")(listen_cmd)
