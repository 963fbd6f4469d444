"""The deployment step for opsgate's two SSM documents (issue 25).

Like the permissions boundaries, the documents are the deployment's: opsgate's
service policy may run them and may not write any document, so it cannot
change what it runs. `manage.py opsgate_boundaries --apply` creates them, or
updates them when a release changes their content, with an administrator's
credentials, in every region where the account's sessions run; or deploy
deploy/cloudformation/opsgate-os-user-documents.json there.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from accounts_app.models import AwsAccount
from provisioning import aws, os_user_documents


def text(content: dict) -> str:
    """A document's content as the deployment step uploads it."""
    return json.dumps(content, indent=2)


def _content(document: dict) -> Any:
    return json.loads(document["Content"])


def _get(ssm: Any, name: str, version: str = "") -> dict | None:
    kwargs = {"Name": name, "DocumentFormat": "JSON"}
    if version:
        kwargs["DocumentVersion"] = version
    try:
        with aws.aws_action("ssm:GetDocument"):
            return ssm.get_document(**kwargs)
    except aws.PermanentError as exc:
        if exc.code == "InvalidDocument":
            return None
        raise


def ensure(ssm: Any, *, name: str, content: dict) -> tuple[str, str]:
    """Create the Command document `name` with `content`, or make a version
    with it the default. Idempotent. Returns (created, updated or unchanged;
    the default version)."""
    current = _get(ssm, name)
    if current is None:
        with aws.aws_action("ssm:CreateDocument"):
            made = ssm.create_document(
                Name=name,
                Content=text(content),
                DocumentType="Command",
                DocumentFormat="JSON",
                Tags=list(os_user_documents.TAGS),
            )
        return "created", made["DocumentDescription"]["DocumentVersion"]
    if current.get("DocumentType") != "Command":
        raise aws.PermanentError(
            f"The SSM document {name} exists and is a {current.get('DocumentType')} "
            "document, not a Command: delete or rename it, then run this again.",
            action="ssm:GetDocument",
            code="WrongDocumentType",
        )
    if _content(current) == content:
        return "unchanged", current["DocumentVersion"]
    try:
        with aws.aws_action("ssm:UpdateDocument"):
            updated = ssm.update_document(
                Name=name,
                Content=text(content),
                DocumentVersion="$LATEST",
                DocumentFormat="JSON",
            )
        version = updated["DocumentDescription"]["DocumentVersion"]
    except aws.PermanentError as exc:
        # A version holds this content already (an earlier release, or a run
        # stopped before the default changed): SSM refuses it twice.
        if exc.code != "DuplicateDocumentContent":
            raise
        version = _version_holding(ssm, name, content)
        if version is None:
            raise
    with aws.aws_action("ssm:UpdateDocumentDefaultVersion"):
        ssm.update_document_default_version(Name=name, DocumentVersion=version)
    return "updated", version


def _version_holding(ssm: Any, name: str, content: dict) -> str | None:
    latest = _get(ssm, name, "$LATEST")
    for number in range(int(latest["DocumentVersion"]) if latest else 0, 0, -1):
        found = _get(ssm, name, str(number))  # None: a deleted version
        if found is not None and _content(found) == content:
            return found["DocumentVersion"]
    return None


def regions_of(account_id: str) -> list[str]:
    """Where the sessions of the account with this id run (the account's
    regions in opsgate, or OPSGATE_REGION when opsgate does not know it)."""
    try:
        account = AwsAccount.objects.filter(account_id=account_id).first()
    except DatabaseError:  # not migrated yet (scripts/demo.sh runs the step first)
        account = None
    return account.session_regions if account else [settings.OPSGATE["REGION"]]


def apply(
    *,
    regions: Iterable[str],
    account: Any = None,
    client: Callable[[str], Any] | None = None,
) -> list[tuple[str, str, str, str]]:
    """Create or update both documents in each region, with the caller's
    credentials (`account`: reach it the way opsgate does; tests and the demo
    only). Returns (region, name, outcome, default version) per document."""
    client = client or (lambda region: aws.client("ssm", account, region=region))
    done = []
    for region in sorted(set(regions)):
        ssm = client(region)
        for name, content in os_user_documents.documents().items():
            outcome, version = ensure(ssm, name=name, content=content)
            done.append((region, name, outcome, version))
    return done
