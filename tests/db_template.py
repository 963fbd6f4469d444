"""The test databases on PostgreSQL: migrated once into a template, then
copied for each test process (pytest-xdist's gw0, gw1, ...).

Every test process used to run all the migrations into its own database,
3 to 40 s each depending on the load, both processes at once. Now the first
process to arrive migrates a template database named after the migrations'
fingerprint (their files and Django's version), under an advisory lock; the
others wait for it, and each copies it (`CREATE DATABASE ... TEMPLATE`, well
under a second). A later run with the same migrations finds the template and
migrates nothing; changed migrations get a new template and the old ones are
dropped. The template is built under another name and renamed when complete,
so a run killed while migrating never leaves a half-migrated one.

The copies are tests' databases: their commits do not wait for the disk
(`synchronous_commit = off`, a setting of that database only; a crash of
PostgreSQL could lose the last commits of a test run, nothing else)."""

import hashlib
import importlib
import zlib
from pathlib import Path

import django
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError
from django.db.migrations.loader import MigrationLoader


def fingerprint() -> str:
    """What the migrated schema depends on: every app's migration files and
    Django's version (its own apps' migrations ship with it)."""
    digest = hashlib.sha256(django.get_version().encode())
    for app in sorted(apps.get_app_configs(), key=lambda a: a.label):
        module_name, _ = MigrationLoader.migrations_module(app.label)
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # an app without migrations
        folder = Path(getattr(module, "__file__", None) or "").parent
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{app.label}/{path.name}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def install() -> None:
    """Make PostgreSQL's test database creation copy the template."""
    from django.db.backends.postgresql.creation import DatabaseCreation

    create = DatabaseCreation.create_test_db
    if getattr(create, "from_template", False):
        return

    def create_test_db(
        self, verbosity=1, autoclobber=False, serialize=True, keepdb=False
    ):
        test = self.connection.settings_dict["TEST"]
        if keepdb or test.get("MIGRATE") is False:
            return create(self, verbosity, autoclobber, serialize, keepdb)
        target = self._get_test_db_name()
        template = f"test_{self.connection.settings_dict['NAME']}_tpl_{fingerprint()}"
        # Advisory locks are per database: everyone takes it in the one the
        # no-database cursor opens (PostgreSQL's "postgres").
        key = zlib.crc32(template.encode())
        with self._nodb_cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            try:
                cursor.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [template]
                )
                if cursor.fetchone() is None:
                    _build(self, create, cursor, template, verbosity)
                quoted = self._quote_name(target)
                cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")
                cursor.execute(
                    f"CREATE DATABASE {quoted} TEMPLATE {self._quote_name(template)}"
                )
                cursor.execute(f"ALTER DATABASE {quoted} SET synchronous_commit = off")
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        test["NAME"] = target
        self.connection.close()
        settings.DATABASES[self.connection.alias]["NAME"] = target
        self.connection.settings_dict["NAME"] = target
        if serialize:
            self.connection._test_serialized_contents = self.serialize_db_to_string()
        self.connection.ensure_connection()
        return target

    create_test_db.from_template = True
    DatabaseCreation.create_test_db = create_test_db


def _build(creation, create, cursor, template: str, verbosity: int) -> None:
    """Migrate a new database and rename it to `template`; drop the templates
    of other migrations."""
    test = creation.connection.settings_dict["TEST"]
    name = creation.connection.settings_dict["NAME"]
    building = f"{template}_new"
    test["NAME"] = building
    create(creation, verbosity, autoclobber=True, serialize=False, keepdb=False)
    creation.connection.close()
    # Back to the database the run was given, for the copy's name.
    creation.connection.settings_dict["NAME"] = name
    settings.DATABASES[creation.connection.alias]["NAME"] = name
    cursor.execute(
        f"ALTER DATABASE {creation._quote_name(building)} "
        f"RENAME TO {creation._quote_name(template)}"
    )
    cursor.execute("SELECT datname FROM pg_database")
    prefix = f"test_{name}_tpl_"
    for (old,) in cursor.fetchall():
        if old.startswith(prefix) and old != template:
            try:
                cursor.execute(f"DROP DATABASE {creation._quote_name(old)}")
            except DatabaseError:  # in use by another run: left for a later one
                pass
