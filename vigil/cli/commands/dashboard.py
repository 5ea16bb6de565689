"""``vigil dashboard``: serve the Streamlit dashboard (no telemetry, nothing from the internet)."""

from __future__ import annotations

import typer


def streamlit_command(port: int, host: str) -> list[str]:
    """The exact ``streamlit run`` command line (tests start the same one)."""
    import sys
    from pathlib import Path

    import dashboard

    app = Path(dashboard.__file__).resolve().parent / "app.py"
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
    ]


def dashboard_cmd(
    port: int = typer.Option(8501, "--port", "-p", min=1, max=65535, help="TCP port to serve on."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (0.0.0.0 only behind a proxy)."
    ),
) -> None:
    """Serve the dashboard at http://HOST:PORT (Ctrl-C stops it).

    Sign in with an account made by `vigil users add NAME --role ROLE`, or put Vigil behind the
    hospital's SSO proxy and set VIGIL_AUTH_HEADER to the header carrying the user name.
    """
    import os

    from vigil.cli.console import console
    from vigil.store.db import open_store

    open_store()  # migrate (and fail with one line) before the server starts
    os.environ["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    cmd = streamlit_command(port, host)
    console.print(f"Vigil dashboard on http://{host}:{port} (Ctrl-C stops it)")
    # cwd: streamlit reads dashboard/.streamlit/config.toml from the working directory.
    # exec: the server replaces this process, so a service manager's stop signal reaches it.
    os.chdir(os.path.dirname(cmd[4]))
    os.execv(cmd[0], cmd)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard_cmd)
