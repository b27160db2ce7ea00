"""teams ids in lower case: Entra object ids kept as Teams sends them

Revision ID: 0008_teams_ids_lower_case
Revises: 0007_outbox_claimed_by

Rota imports stored a Teams Entra object id (a GUID) as typed; Teams sends it in lower case, so
someone imported in upper case was refused as not on the rota, and their first message to the
bot made them a second directory entry under the lower-case id. Each such id is lower-cased;
the second entry is merged into the rota's (its shifts, cover and whatever the rota's lacks).
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0008_teams_ids_lower_case"
down_revision = "0007_outbox_claimed_by"
branch_labels = None
depends_on = None

# As storage/rota.py's ENTRA_OBJECT_ID; copied so this migration stays as it was written.
ENTRA_OBJECT_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)
# What the merged entry takes from the second when it has none of its own.
FILLED = ("email", "slack_user_id", "teams_conversation", "mobile", "pager")

staff = sa.table("staff", sa.column("id"), sa.column("teams_user_id"), *map(sa.column, FILLED))
shift = sa.table("shift", sa.column("staff_id"))
cover = sa.table("cover", sa.column("staff_id"))


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(staff.c.id, staff.c.teams_user_id)
        .where(staff.c.teams_user_id.is_not(None))
        .order_by(staff.c.id)
    ).all()
    holder = {teams_id: staff_id for staff_id, teams_id in rows}
    for staff_id, teams_id in rows:
        lower = teams_id.lower()
        if lower == teams_id or not ENTRA_OBJECT_ID.fullmatch(teams_id):
            continue
        # The entry that gave the id in upper case is the rota's: it is kept, with its name, and
        # the one Teams made under the lower-case id when they first wrote is merged into it.
        twin = holder.get(lower)
        if twin is not None and twin != staff_id:
            _merge(bind, twin, into=staff_id)
        bind.execute(staff.update().where(staff.c.id == staff_id).values(teams_user_id=lower))
        holder[lower] = staff_id


def _merge(bind: sa.Connection, gone: int, *, into: int) -> None:
    """Move `gone`'s shifts and cover to `into`, fill what `into` lacks, delete `gone`."""
    for duty in (shift, cover):
        bind.execute(duty.update().where(duty.c.staff_id == gone).values(staff_id=into))
    kept, other = _filled(bind, into), _filled(bind, gone)
    bind.execute(staff.delete().where(staff.c.id == gone))  # first: its email is UNIQUE
    filled = {
        name: theirs
        for name, ours, theirs in zip(FILLED, kept, other, strict=True)
        if ours is None and theirs is not None
    }
    if filled:
        bind.execute(staff.update().where(staff.c.id == into).values(**filled))


def _filled(bind: sa.Connection, staff_id: int) -> sa.Row:
    return bind.execute(
        sa.select(*(staff.c[name] for name in FILLED)).where(staff.c.id == staff_id)
    ).one()


def downgrade() -> None:
    """Nothing to undo: a lower-case id works as well as the upper-case one did."""
