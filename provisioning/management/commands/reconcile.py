from django.core.management.base import BaseCommand, CommandError

from accounts_app.models import AwsAccount
from provisioning import reconcile
from provisioning.aws import AwsError


class Command(BaseCommand):
    help = (
        "Compare each AWS account with the database (GetAccountAuthorizationDetails),"
        " record drift and repair what opsgate owns."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-repair",
            action="store_true",
            help="Only record and print the drift; change nothing in AWS.",
        )
        parser.add_argument("--account", help="Only this 12-digit account id.")

    def handle(self, *args, no_repair: bool, account: str | None, **options):
        accounts = AwsAccount.objects.all()
        if account:
            accounts = accounts.filter(account_id=account)
            if not accounts:
                raise CommandError(f"No account {account} in opsgate.")
        failed = False
        for acct in accounts:
            try:
                report = reconcile.reconcile_account(acct, repair=not no_repair)
            except AwsError as exc:
                self.stderr.write(f"{acct}: {exc.message}")
                failed = True
                continue
            self.stdout.write(f"{acct}: {len(report.found)} drift(s)")
            for f in report.found:
                mark = "" if f.repairable else " (report only)"
                self.stdout.write(
                    f"  {f.object_type} {f.name}: {f.kind}: {f.detail}{mark}"
                )
            for label in report.repaired:
                self.stdout.write(f"  repaired {label}")
            for label in report.retried:
                self.stdout.write(f"  retried {label} (stopped by an error, no drift)")
            for error in report.errors:
                self.stderr.write(f"  not repaired: {error}")
                failed = True
            if report.skipped:
                self.stdout.write(
                    f"  left alone (changed recently): {', '.join(report.skipped)}"
                )
        if failed:
            raise CommandError("Reconcile finished with errors (see above).")
