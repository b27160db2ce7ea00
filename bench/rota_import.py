"""How long a big rota file takes to import, on SQLite and PostgreSQL.

    .venv/bin/python bench/rota_import.py [--roles 40]

A year of day and night shifts for `--roles` roles, three people rotating on each (40 roles:
29,200 rows), imported into an empty database with `import_rota`, as `python bot.py rota import`
does; then the same file again (every row unchanged). Prints the seconds each took and the SQL
statements each sent. On SQLite the whole import is one transaction holding the file's write
lock: the escalation sweep cannot record anything meanwhile (docs/rota.md). No asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import speed  # noqa: E402
from rotas.importer import import_rota  # noqa: E402
from storage.database import Database  # noqa: E402
from tests.support.builders import a_years_rota, make_services  # noqa: E402
from tests.support.clock import FrozenClock  # noqa: E402
from tests.support.databases import drop_template, postgres_database, sqlite_database  # noqa: E402


def timed_import(db: Database, path: Path) -> tuple[float, int, str]:
    """Seconds, statements sent, and the report's first line, for one import of `path`."""
    services = make_services(db, FrozenClock(datetime(2026, 12, 1, tzinfo=UTC)))
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        began = time.perf_counter()
        report = import_rota(services=services, path=path)
        return time.perf_counter() - began, statements, report.lines()[0]
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", type=int, default=40)
    args = parser.parse_args()
    print(speed())
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "trust.csv"
        path.write_text(a_years_rota(args.roles), encoding="utf-8")
        for name in ("sqlite", "postgres"):
            with ExitStack() as stack:
                if name == "postgres":
                    url = stack.enter_context(postgres_database())
                    stack.callback(drop_template)
                else:
                    url = stack.enter_context(sqlite_database(workdir))
                db = Database(url)
                for run in ("first import", "same file again"):
                    seconds, statements, said = timed_import(db, path)
                    print(f"{name:8} {run:15} {seconds:6.1f} s  {statements:7,} statements  {said}")
                db.dispose()


if __name__ == "__main__":
    main()
