"""The People page: its order by IAM user name from an index, and its search
(a substring of five columns of two tables, `icontains`) from trigram
indexes instead of reading every person. The trigram indexes are
PostgreSQL's (pg_trgm, a trusted extension: the database owner may create
it); on SQLite the search reads the table, as before."""

from django.db import migrations, models

# Django's icontains on PostgreSQL is `UPPER("col"::text) LIKE UPPER(%s)`:
# the indexed expressions are the same, so the planner can use them.
TRGM_INDEXES = {
    "iam_user_search_trgm": ("accounts_app_iamuser", ["name", "email"]),
    "auth_user_search_trgm": ("auth_user", ["email", "first_name", "last_name"]),
}


def _postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def trgm_create(apps, schema_editor):
    if not _postgresql(schema_editor):
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, columns) in TRGM_INDEXES.items():
        expressions = ", ".join(f"UPPER({c}) gin_trgm_ops" for c in columns)
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expressions})"
        )


def trgm_drop(apps, schema_editor):
    if not _postgresql(schema_editor):
        return
    for name in TRGM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts_app", "0010_perf_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="iamuser",
            index=models.Index(fields=["name"], name="iam_user_name_idx"),
        ),
        migrations.RunPython(trgm_create, trgm_drop, elidable=False),
    ]
