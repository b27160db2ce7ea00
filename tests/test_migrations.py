"""The migrations build exactly the schema storage/tables.py describes, with one head, and
bring an existing database's data along."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import SQLModel, select

import storage.tables  # noqa: F401 - registers the tables
from storage.database import Database
from storage.migrate import alembic_config
from storage.tables import Cover, Shift, Staff


def test_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config(None)).get_heads()  # type: ignore[arg-type]
    assert len(heads) == 1, f"two migration heads: {heads}; re-point one down_revision"


def test_migrated_schema_matches_the_tables(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_upper_case_teams_ids_are_lowered_and_a_second_entry_merged(db: Database) -> None:
    """0008 on a directory from before it: Grace imported with her object id in upper case, and
    the entry Teams made for her under the lower-case one when she first wrote."""
    grace = "9ace9ace-0000-4000-8000-000000000005"
    config = alembic_config(db.engine)
    command.downgrade(config, "0007_outbox_claimed_by")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO staff (id, name, email, slack_user_id, teams_user_id, "
                "teams_conversation) VALUES "
                "(1, 'Grace Okafor', 'grace.okafor@nhs.net', NULL, :upper, NULL), "
                "(2, 'Grace Okafor', NULL, NULL, :lower, '{\"userId\": \"29:9ace\"}'), "
                "(3, 'Alex Carter', NULL, 'U01ALEX', '29:AbCdEf', NULL)"
            ),
            {"upper": grace.upper(), "lower": grace},
        )
        connection.execute(
            text(
                'INSERT INTO shift (role, staff_id, start, "end", source, imported_at) VALUES '
                "('outreach', 1, '2026-12-01 08:00:00', '2026-12-01 20:00:00', 'rota.csv', "
                "'2026-11-30 00:00:00')"
            )
        )
        connection.execute(
            text(
                'INSERT INTO cover (role, staff_id, start, "end", recorded_by, recorded_at) '
                "VALUES ('outreach', 2, '2026-12-02 08:00:00', '2026-12-02 20:00:00', 'Lead', "
                "'2026-12-01 00:00:00')"
            )
        )
    command.upgrade(config, "head")
    with db.reading() as uow:
        people = {p.id: p for p in uow.session.exec(select(Staff)).all()}
        duties = [
            d.staff_id for d in (*uow.session.exec(select(Shift)), *uow.session.exec(select(Cover)))
        ]
    assert set(people) == {1, 3} and duties == [1, 1]
    assert people[1].teams_user_id == grace and people[1].email == "grace.okafor@nhs.net"
    assert people[1].teams_conversation == '{"userId": "29:9ace"}'
    # Slack's ids and Teams' own 29: ids are case-sensitive: left as they were.
    assert (people[3].slack_user_id, people[3].teams_user_id) == ("U01ALEX", "29:AbCdEf")


def test_the_rotas_entry_is_kept_when_the_one_teams_made_came_first(db: Database) -> None:
    """Grace wrote to the bot before a rota named her by her object id in upper case: the entry
    Teams made had the lower id, and the rota's entry, with its name, was the one deleted."""
    grace = "9ace9ace-0000-4000-8000-000000000005"
    config = alembic_config(db.engine)
    command.downgrade(config, "0007_outbox_claimed_by")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO staff (id, name, email, teams_user_id, teams_conversation) VALUES "
                "(1, 'OKAFOR, Grace (EXAMPLE NHS TRUST)', 'grace.okafor@nhs.net', :lower, "
                "'{\"userId\": \"29:9ace\"}'), (2, 'Grace Okafor', NULL, :upper, NULL)"
            ),
            {"upper": grace.upper(), "lower": grace},
        )
        connection.execute(
            text(
                'INSERT INTO shift (role, staff_id, start, "end", source, imported_at) VALUES '
                "('outreach', 2, '2026-12-01 08:00:00', '2026-12-01 20:00:00', 'rota.csv', "
                "'2026-11-30 00:00:00')"
            )
        )
    command.upgrade(config, "head")
    with db.reading() as uow:
        [kept] = uow.session.exec(select(Staff)).all()
        [shift] = uow.session.exec(select(Shift)).all()
    assert (kept.id, kept.name, kept.teams_user_id) == (2, "Grace Okafor", grace)
    assert kept.email == "grace.okafor@nhs.net" and kept.teams_conversation  # from Teams'
    assert shift.staff_id == 2
