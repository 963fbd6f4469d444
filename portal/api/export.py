"""The committed API reference, docs/openapi.json, is this output:
`python -m portal.api.export > docs/openapi.json` (a test checks they match)."""

import json
import os


def schema_json() -> str:
    from portal.api.views import api

    schema = api.get_openapi_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    print(schema_json(), end="")
