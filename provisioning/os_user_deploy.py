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

from provisioning import aws, os_user_documents


def _content(document: dict) -> Any:
    return json.loads(document["Content"])


def _get(ssm: Any, name: str, version: str = "") -> dict | None:
    kwargs = {"Name": name, **({"DocumentVersion": version} if version else {})}
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
                Content=json.dumps(content, indent=2),
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
    # A newer version may hold the content already (a run stopped before the
    # default changed): SSM refuses the same content twice.
    latest = _get(ssm, name, "$LATEST")
    if latest is not None and _content(latest) == content:
        version = latest["DocumentVersion"]
    else:
        with aws.aws_action("ssm:UpdateDocument"):
            updated = ssm.update_document(
                Name=name,
                Content=json.dumps(content, indent=2),
                DocumentVersion="$LATEST",
                DocumentFormat="JSON",
            )
        version = updated["DocumentDescription"]["DocumentVersion"]
    with aws.aws_action("ssm:UpdateDocumentDefaultVersion"):
        ssm.update_document_default_version(Name=name, DocumentVersion=version)
    return "updated", version


def regions_of(account_id: str) -> list[str]:
    """Where the sessions of the account with this id run (the account's
    regions in opsgate, or OPSGATE_REGION when opsgate does not know it)."""
    from accounts_app.models import AwsAccount

    account = AwsAccount.objects.filter(account_id=account_id).first()
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
