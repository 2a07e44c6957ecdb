"""`edgekit serve --ray[:ADDRESS] --replicas N`: the same FastAPI application as N Ray Serve replicas behind Ray's
HTTP proxy, on a local Ray instance or a cluster.

Each replica builds the application from the same config as `edgekit serve` does in one process and loads and warms
its model in its constructor, so Ray sends it traffic only once it is ready. The API and its JSON are the same;
`/metrics` is the answering replica's own registry (as with `--workers`), and every response names its replica in
`X-Edgekit-Replica`. Ray Serve's own request metrics cover the deployment as a whole.
"""

from __future__ import annotations

import signal
import time

from ..errors import EdgekitError

INSTALL_HINT = "pip install 'edgekit[ray]' (Ray Serve is part of the optional ray extra)"
APP_NAME = "edgekit"


class ServeFailed(EdgekitError):
    """The replicas did not start: exit code 1 (the input was checked before; this is the cluster's side)."""

    exit_code = 1


class ReplicaHeader:
    """Adds `X-Edgekit-Replica: <id>` to every response (plain ASGI, like the metrics middleware)."""

    def __init__(self, app, replica: str):
        self.app, self.header = app, (b"x-edgekit-replica", replica.encode())

    async def __call__(self, scope, receive, send):
        async def send_with_header(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_header if scope["type"] == "http" else send)


class EdgekitReplica:
    """One Ray Serve replica: the application of `edgekit.serve.app.app_from_config`, its model warm before the
    constructor returns."""

    def __init__(self, config: dict):
        from ray import serve

        from .app import app_from_config

        self.edgekit_app = app_from_config(config)  # (`app` is Ray's own attribute)
        self.edgekit_app.state.model.load(config["limits"]["warmup_s"])  # the lifespan sees it ready: no reload
        self.edgekit_app.add_middleware(ReplicaHeader, replica=serve.get_replica_context().replica_id.unique_id)

    def __serve_build_asgi_app__(self):
        return self.edgekit_app


def _interrupt(*_):
    for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal must not cut the shutdown short
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def serve_on_ray(config: dict, address: str | None, replicas: int, replica_cpus: float, host: str,
                 port: int, log=lambda line: print(line, flush=True)) -> None:
    """Deploy and keep serving until interrupted (Ctrl-C or SIGTERM); then the deployment, and a Ray instance this
    call started, are shut down."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise EdgekitError(f"edgekit serve --ray needs Ray Serve: {INSTALL_HINT}") from None

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        except (ValueError, ConnectionError) as exc:
            raise EdgekitError(f"--ray-address {address!r}: {exc} (expected a running cluster's HOST:PORT or "
                               "ray://HOST:PORT, or nothing for a local instance)") from None
    # After ray.init, which installs its own handler (a stack dump): SIGTERM stops the way Ctrl-C does, through
    # `finally`, so the deployment and a local Ray instance are shut down.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        serve.start(http_options={"host": host, "port": port})
        deployment = serve.deployment(name="edgekit-serve", num_replicas=replicas,
                                      ray_actor_options={"num_cpus": replica_cpus})(serve.ingress()(EdgekitReplica))
        try:
            serve.run(deployment.bind(config), name=APP_NAME, route_prefix="/")
        except RuntimeError as exc:  # Ray's message ends with the replica's own exception
            last = [line for line in str(exc).splitlines() if line.strip()][-1:] or ["(no message)"]
            raise ServeFailed(f"Ray Serve could not start the replicas: {last[0].strip()} (replica logs: "
                              "the Ray session's logs/serve/)") from None
        log(f"serving on http://{host}:{port} with {replicas} Ray Serve replica(s) "
            f"({'cluster ' + address if address else 'local Ray instance'}); Ctrl-C stops")
        while True:  # serve.run returned once every replica is up; the proxy serves from Ray's processes
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        if started:
            ray.shutdown()
