"""Autogenerate an Alembic migration from vigil/store/tables.py.

Usage: .venv/bin/python scripts/new_migration.py "what changed"   (a new revision on top)
       .venv/bin/python scripts/new_migration.py --initial          (rewrite 0001 from scratch;
                                                                    only before the first release)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from vigil.store.db import MIGRATIONS, alembic_config, make_engine

if __name__ == "__main__":
    initial = "--initial" in sys.argv
    message = "initial schema" if initial else " ".join(a for a in sys.argv[1:] if a != "--initial")
    if not message:
        sys.exit("give a message: what changed")
    versions = MIGRATIONS / "versions"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'gen.sqlite'}")
        cfg = alembic_config(engine)
        if initial:
            for f in versions.glob("*.py"):
                f.unlink()
            command.revision(cfg, message=message, autogenerate=True, rev_id="0001")
        else:
            command.upgrade(cfg, "head")
            n = len(list(versions.glob("*.py"))) + 1
            command.revision(cfg, message=message, autogenerate=True, rev_id=f"{n:04d}")
