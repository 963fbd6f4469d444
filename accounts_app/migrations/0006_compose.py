# Issue 20, items 11 and 13: who made each auto-approval rule (the approval
# a rule stands for), and open review items that follow their grant through
# extensions made before this change.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def rule_authors(apps, schema_editor):
    """Each rule's author from its `role.auto_rule_add` audit row; a rule
    whose row is gone keeps no author and approves nothing."""
    Rule = apps.get_model("accounts_app", "AutoApprovalRule")
    AuditEvent = apps.get_model("accounts_app", "AuditEvent")
    for rule in Rule.objects.filter(created_by__isnull=True):
        event = (
            AuditEvent.objects.filter(
                action="role.auto_rule_add",
                object_type="accounts_app.operationrole",
                object_id=str(rule.role_id),
                after__rule=rule.name,
                actor__isnull=False,
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if event is not None:
            rule.created_by_id = event.actor_id
            rule.save(update_fields=["created_by"])


def review_items_follow_extensions(apps, schema_editor):
    """Open review items on a grant an extension replaced move to the grant
    the person holds now (the `request.extend` audit rows name it)."""
    Item = apps.get_model("accounts_app", "AccessReviewItem")
    AuditEvent = apps.get_model("accounts_app", "AuditEvent")
    open_items = Item.objects.filter(
        decision="", review__closed_at__isnull=True, grant__status="expired"
    )
    for item in open_items:
        grant_id, seen = item.grant_id, set()
        while grant_id not in seen:
            seen.add(grant_id)
            event = AuditEvent.objects.filter(
                action="request.extend",
                object_type="accounts_app.accessrequest",
                object_id=str(grant_id),
            ).first()
            if event is None or not (event.after or {}).get("replaced_by"):
                break
            grant_id = event.after["replaced_by"]
        taken = Item.objects.filter(review_id=item.review_id, grant_id=grant_id)
        if grant_id != item.grant_id and not taken.exists():
            item.grant_id = grant_id
            item.save(update_fields=["grant"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts_app", "0005_accounts_kinds"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="autoapprovalrule",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(rule_authors, migrations.RunPython.noop),
        migrations.RunPython(review_items_follow_extensions, migrations.RunPython.noop),
    ]
