"""The Ray Serve application: an OpenAI-compatible HTTP shell around `ChatService`.

Routes: GET /healthz, GET /v1/models, POST /v1/chat/completions (JSON or server-sent events).
Bound to 127.0.0.1:8000 by default (`serve.host`, `serve.port`); replicas or autoscaling from the
`serve` config section. With an API key (`serve.api_key` or the variable named by
`serve.api_key_env`), every path but /healthz needs `Authorization: Bearer <key>`, checked before the
path is resolved: an unknown or mistyped path (a trailing slash, another method) without the key is a
401, never a redirect that tells a stranger where the API is. /healthz stays open for probes.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve

from empathy_ray.config import Config, ServeConfig
from empathy_ray.serve import protocol as P

log = logging.getLogger(__name__)
APP_NAME = "empathy-ray"
# No redirects for a trailing slash: the catch-all route below answers every other path.
api = FastAPI(title="empathy-ray counselling API", redirect_slashes=False)
_ROUTES = {"/v1/models": "GET", "/v1/chat/completions": "POST"}


def _error(e: P.ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status)


# Module-level helpers sit above the deployment: Serve pickles the class when it is decorated.
async def _prepend(first: str, rest):
    yield first
    async for item in rest:
        yield item


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it is known to pass `limit` bytes (before parsing)."""
    too_large = P.ApiError(
        413,
        f"the request body is larger than {limit} bytes; send fewer or shorter messages",
        code="body_too_large",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@serve.deployment
@serve.ingress(api)
class CounselServer:
    def __init__(self, model_dir: str, cfg: ServeConfig, api_key: str) -> None:
        from empathy_ray.runtime.process import setup_process
        from empathy_ray.serve.service import ChatService

        setup_process()
        self.cfg, self.api_key = cfg, api_key
        self.limit = P.body_limit(cfg)
        self.service = ChatService(model_dir, cfg)

    def _check_auth(self, request: Request) -> None:
        if not self.api_key:
            return
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise P.ApiError(
                401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key"
            )

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok", "model": self.cfg.model_name}

    @api.get("/v1/models")
    async def models(self, request: Request):
        try:
            self._check_auth(request)
        except P.ApiError as e:
            return _error(e)
        model = {"id": self.cfg.model_name, "object": "model", "created": 0, "owned_by": "empathy-ray"}
        return {"object": "list", "data": [model]}

    @api.post("/v1/chat/completions")
    async def chat(self, request: Request):
        rid = P.new_id()
        try:
            self._check_auth(request)
            req = P.parse_chat_request(P.parse_body(await _read_body(request, self.limit)), self.cfg)
            if req.stream:
                events = self.service.stream(req, rid)
                first = await anext(events)  # surfaces a 400 (e.g. context too long) as a status code
                return StreamingResponse(_prepend(first, events), media_type="text/event-stream")
            return await self.service.complete(req, rid)
        except P.ApiError as e:
            log.info("%s: rejected with %d (%s)", rid, e.status, e.param or e.code or "request")
            return _error(e)
        except Exception:
            log.exception("%s: engine failure", rid)
            return _error(P.ApiError(500, "the model failed to answer; try again", code="engine_error"))

    @api.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    async def other(self, request: Request, path: str):
        """Every other path and method: the key first, then a 404 or 405 naming the routes there are."""
        try:
            self._check_auth(request)
        except P.ApiError as e:
            return _error(e)
        route = "/" + path
        if _ROUTES.get(route):
            message = f"{request.method} {route} is not allowed: use {_ROUTES[route]}"
            return _error(P.ApiError(405, message, code="method_not_allowed"))
        routes = ", ".join(f"{m} {r}" for r, m in _ROUTES.items())
        return _error(
            P.ApiError(404, f"no route {request.method} {route}; this server has {routes}", code="not_found")
        )


def resolve_api_key(cfg: ServeConfig) -> str:
    return cfg.api_key or os.environ.get(cfg.api_key_env, "")


def build_app(cfg: ServeConfig, model_dir: Path, api_key: str):
    """The bound deployment, with replicas/autoscaling and per-replica resources from the config."""
    from empathy_ray.runtime.process import worker_env

    options: dict[str, Any] = {
        "max_ongoing_requests": cfg.max_ongoing_requests,
        "ray_actor_options": {
            "num_cpus": cfg.num_cpus,
            "num_gpus": cfg.num_gpus,
            "resources": dict(cfg.resources),
            "runtime_env": {"env_vars": worker_env()},
        },
    }
    if cfg.autoscaling:
        options["autoscaling_config"] = {
            "min_replicas": cfg.min_replicas,
            "max_replicas": cfg.max_replicas,
            "target_ongoing_requests": cfg.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = cfg.num_replicas
    return CounselServer.options(**options).bind(str(model_dir), cfg, api_key)


def deploy(cfg: Config, model_dir: Path, name: str = APP_NAME) -> str:
    """Start Serve (if needed) on serve.host:serve.port, deploy the app, return its /v1 base URL.

    Returns when every replica's engine is up. Ray must be initialised (runtime.init_ray).
    """
    sv = cfg.serve
    serve.start(http_options={"host": sv.host, "port": sv.port})
    serve.run(build_app(sv, model_dir, resolve_api_key(sv)), name=name, route_prefix=sv.route_prefix)
    url = f"http://{sv.host}:{sv.port}{sv.route_prefix.rstrip('/')}/v1"
    log.info("serve: %s deployed from %s at %s", name, model_dir, url)
    return url


def undeploy(name: str = APP_NAME) -> None:
    serve.delete(name)
