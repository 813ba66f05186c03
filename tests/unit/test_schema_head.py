"""The start-up shortcut's SCHEMA_HEAD must name the newest migration."""

from alembic.config import Config
from alembic.script import ScriptDirectory

from byourside_server.store.database import MIGRATIONS_DIR, SCHEMA_HEAD


def test_schema_head_matches_the_newest_migration():
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_heads() == [SCHEMA_HEAD]
