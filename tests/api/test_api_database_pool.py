"""The API worker's SQLite pool: a bounded number of connections, each with the small page cache (memory by config)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from apilive import LiveServer, run_server, submission

from bugdesk import db as dbmod
from bugdesk.config import Settings


def test_many_concurrent_reads_share_the_few_pooled_connections_with_their_small_caches(tmp_path):
    settings = replace(
        Settings(), database_url=f"sqlite:///{tmp_path / 'pool.db'}", sqlite_pool_size=2, sqlite_pool_cache_mb=3
    )
    with run_server(settings) as url:
        server = LiveServer(url=url, settings=settings)
        server.add_token("agent", "read,write")
        server.add_token("admin", "admin")
        number = server.submit(submission())["number"]
        client = server.client("agent")
        # More reads at once than the pool holds: the excess waits for a connection instead of opening one.
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda _: client.get(f"/api/bug-reports/{number}").status_code, range(64)))
        assert statuses == [200] * 64
        pooled = dbmod.database.obj
        assert len(pooled._in_use) + len(pooled._connections) <= 2
        with pooled.connection_context():
            assert pooled.execute_sql("PRAGMA cache_size").fetchone()[0] == -3 * 1024
        for open_client in server.clients:
            open_client.close()
