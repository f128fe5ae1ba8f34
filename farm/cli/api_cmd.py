# SPDX-License-Identifier: Apache-2.0
"""farm api: serve the alert webhook, the JSON API and the web view with uvicorn."""

from __future__ import annotations

import click

from farm.cli.common import bind_option, get_config, get_store, log_level_option

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@click.command()
@bind_option("--host", default=None, help="Address to listen on (default: api.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: api.port, 9479).")
@log_level_option
@click.pass_context
def api(ctx: click.Context, bind: str | None, port: int | None, log_level: str) -> None:
    """Serve POST /api/alerts (Grafana and Alertmanager webhooks), GET /api/* and the
    web view (/runs, /series, /bisections, /hosts; log in at /login with a token).

    Every /api request needs "Authorization: Bearer <token>"; the read token comes from
    $FARM_API_TOKEN or the api.token_file (default <data_dir>/api-token), the admin
    token, which may cancel runs, start bisections and switch maintenance, from
    $FARM_API_ADMIN_TOKEN or api.admin_token_file (default <data_dir>/api-admin-token;
    without one the web view is read-only).
    """
    import uvicorn

    from farm.api import create_app
    from farm.api.auth import load_admin_token, load_token

    config = get_config(ctx)
    token = load_token(config)
    app = create_app(
        get_store(ctx),
        token,
        admin_token=load_admin_token(config),
        config=config,
        confidence=config.bisect.confidence,
        max_body=config.api.max_body_bytes,
    )
    bind_host = bind or config.api.host
    bind_port = port or config.api.port
    click.echo(
        f"farm api: serving on http://{bind_host}:{bind_port} "
        "(POST /api/alerts, the web view at /runs)",
        err=True,
    )
    if bind_host not in LOOPBACK:
        click.echo(
            f"farm api: warning: {bind_host} is not loopback; the API is reachable from "
            "the network (plain HTTP: put TLS in front of it)",
            err=True,
        )
    uvicorn.run(
        app, host=bind_host, port=bind_port, log_level=log_level.lower(), server_header=False
    )
