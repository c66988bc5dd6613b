"""A tiny traced service for the telemetry tests: Litestar + aiosqlite + httpx.

Run as a script: ``python telemetry_probe_app.py`` with PORT, DB path in
PROBE_DB, and the usual DD_* / OTEL_* variables. Routes:

- ``GET /items/{item_id:int}``: one aiosqlite query, a custom span, a log line.
- ``GET /relay/{item_id:int}``: calls ``/items/{item_id}`` on PEER_URL with httpx.
"""

from __future__ import annotations

import logging
import os

import aiosqlite
import httpx
import uvicorn
from litestar import Litestar, get
from servicekit.logs import configure_logging
from servicekit.telemetry import configure_telemetry, instrument_app, work_span

log = logging.getLogger("probe")


def create_app(db_path: str, peer_url: str) -> Litestar:
    @get("/items/{item_id:int}")
    async def item(item_id: int) -> dict[str, object]:
        with work_span("probe.lookup", **{"probe.size": 5}) as span:
            async with aiosqlite.connect(db_path) as db, db.execute("SELECT ?", (item_id,)) as cur:
                row = await cur.fetchone()
            span.set_attribute("probe.hit", True)
        log.info("item served", extra={"item.id": item_id})
        return {"id": row[0] if row else None}

    @get("/relay/{item_id:int}")
    async def relay(item_id: int) -> dict[str, object]:
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"{peer_url}/items/{item_id}")
        return {"relayed": reply.json()}

    return instrument_app(Litestar([item, relay], logging_config=None))


def main() -> None:
    configure_telemetry(os.environ.get("PROBE_SERVICE", "probe"), version="1.2.3")
    configure_logging("probe")
    port = int(os.environ["PORT"])
    app = create_app(os.environ["PROBE_DB"], os.environ.get("PEER_URL", f"http://127.0.0.1:{port}"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
