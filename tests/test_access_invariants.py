"""The access promise as a model-based test (issue 20, DESIGN §4.1 and §7.1).

A hypothesis state machine drives opsgate's services (request, approve,
reject, cancel, scheduled requests, extensions, auto-approval rules,
break-glass, access reviews, revoke, expiry by a controlled clock, offboard,
re-add, cross-account principals) across an identity account and two workload
accounts in moto. Some steps run with an AWS fault injected at the boto3 edge
(throttling, AccessDenied, SSM errors, an account that stops answering): the
worker runs with it, (f) is checked, then the fault goes and the worker
settles. After each step, reading moto with plain boto3 (tests/invariants_model.py):

 (a) a person is in a role's trust iff they hold a grant whose window
     contains now and they are active (and an active person in sync has
     their IAM user, an offboarded one none usable);
 (b) no grant's window exceeds what its approvals (or rule, or break-glass)
     allowed, as the test's own model of them says;
 (c) sessions issued before an ending stay denied (the revoked-sessions deny
     names them with a cutoff at or after the ending) for the session
     duration, even after a re-grant; their SSM sessions are ended;
 (d) no trust over the account's trust quota, no role's inline policies over
     IAM's 10,240 characters;
 (e) nobody approved their own request, by any path;
 (f) after a faulty step, before the settle: every principal in a trust holds
     a grant or the database shows the role's change as pending; an SSM
     failure never keeps IAM open; a workload account's failure never keeps
     an offboarded person usable in the identity account.

Bounded in CI (OPSGATE_INVARIANTS_EXAMPLES, default 20 examples, and
OPSGATE_INVARIANTS_STEPS, default 15 steps). The long run:

    OPSGATE_INVARIANTS_EXAMPLES=500 OPSGATE_INVARIANTS_STEPS=30 \\
      scripts/test.sh tests/test_access_invariants.py

Counterexamples found are kept as plain tests in
tests/test_access_invariants_found.py.
"""

import os
import re
import sys
import urllib.request
from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from accounts_app.models import (
    AccessRequest,
    AccessReviewItem,
    IamUserState,
    RequestStatus,
)
from accounts_app.services import (
    access_requests,
    access_reviews,
    break_glass,
    people,
    roles,
    rules,
)
from tests import invariants_model as m

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("OPSGATE_INVARIANTS_EXAMPLES", "20"))
STEPS = int(os.environ.get("OPSGATE_INVARIANTS_STEPS", "15"))

REFUSED = (ValidationError, PermissionDenied)


def refused(exc) -> str:
    """The outcome of a refused call, for the statistics."""
    text = " ".join(getattr(exc, "messages", None) or [str(exc)])
    return f"refused: {text[:60]}"


FAULTS = st.one_of(
    st.builds(
        m.Fault,
        kind=st.just("iam"),
        code=st.sampled_from(["Throttling", "AccessDenied", "ServiceUnavailable"]),
        op=st.sampled_from(
            [
                None,
                "PutRolePolicy",
                "DeleteRolePolicy",
                "UpdateAssumeRolePolicy",
                "DeleteRole",
                "CreateRole",
                "GetRole",
                "DeleteUser",
                "RemoveUserFromGroup",
                "CreateUser",
            ]
        ),
        account=st.sampled_from([None, m.ACCOUNT_ID, m.STAGING_ID, m.PROD_ID]),
    ),
    st.builds(
        m.Fault,
        kind=st.just("ssm"),
        code=st.sampled_from(["AccessDeniedException", "ThrottlingException"]),
        op=st.sampled_from([None, "DescribeSessions", "TerminateSession"]),
    ),
    st.builds(
        m.Fault,
        kind=st.just("dead"),
        account=st.sampled_from([m.ACCOUNT_ID, m.STAGING_ID, m.PROD_ID]),
    ),
)
# Most steps run without a fault; about one in four with one.
MAYBE_FAULT = st.one_of(st.none(), st.none(), st.none(), FAULTS)
NAMES = st.sampled_from(m.PEOPLE)
ROLE_KEYS = st.sampled_from(m.ROLES)
PICK = st.integers(min_value=0, max_value=50)


class Harness:
    """What the pytest fixtures give the machine (set by the test)."""

    clock: m.Clock
    faults: m.Faults
    reader: m.Reader
    ssm: object


class AccessInvariants(RuleBasedStateMachine):
    @initialize()
    def world(self):
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        clock = Harness.clock
        clock.at = None
        clock.at = clock.now().replace(microsecond=0)
        Harness.faults.armed = []
        Harness.ssm.sessions.clear()
        ready = Harness.moto["baseline_ready"]
        self.world = m.World(Harness.reader, baseline_ready=ready)
        Harness.moto["baseline_ready"] = True
        self.model = m.Model(active={n: True for n in m.PEOPLE})
        m.observe(self.world, self.model, self.now)

    def teardown(self):
        Harness.faults.armed = []
        if hasattr(self, "atomic"):
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)
        Harness.clock.at = None

    # --- Helpers --------------------------------------------------------------

    @property
    def now(self):
        return Harness.clock.now()

    def user(self, name):
        return self.world.person(name).user

    def step(self, action, fault):
        """Run a service call; with a fault armed, the worker runs with it
        and (f) is checked; then the worker settles without faults and every
        invariant is checked."""
        Harness.clock.advance(timedelta(seconds=1))
        started = self.now
        problems = []
        if fault is not None:
            Harness.faults.armed = [fault]
        try:
            outcome = action() or "done"
            Harness.stats[(sys._getframe(1).f_code.co_name, outcome)] += 1
            if fault is not None:
                from accounts_app.services import lifecycle

                lifecycle.lifecycle_run()
                m.run_worker(rounds=2)
                problems = kept(
                    m.faulty_violations(
                        self.world,
                        self.model,
                        self.now,
                        fault=fault,
                        step_started=started,
                    )
                )
        finally:
            Harness.faults.armed = []
        assert not problems, f"with {fault}:\n" + "\n".join(problems)
        m.settle(self.world.admin)
        problems = kept(
            m.settled_violations(self.world, self.model, Harness.ssm, self.now)
        )
        assert not problems, "after the settle:\n" + "\n".join(problems)
        self.shells_open()

    def shells_open(self):
        """Everyone in a trust now assumes the role and opens an SSM shell
        (one live shell per person and role)."""
        for key in m.ROLES:
            role = self.world.role(key)
            for (name, role_key), sightings in self.model.seen.items():
                if role_key != key or not sightings or sightings[-1][0] != self.now:
                    continue
                owner = (
                    f"arn:aws:sts::{self.world.role_account_id(key)}:assumed-role/"
                    f"{role.role_name}/{name}"
                )
                if Harness.ssm.sessions.get(owner):
                    continue
                session = m.Session(
                    id=f"s-{next(m.session_ids)}",
                    owner=owner,
                    name=name,
                    role=key,
                    started=self.now,
                )
                Harness.ssm.sessions.setdefault(owner, []).append(session.id)
                self.model.sessions.append(session)

    def pick(self, queryset, index):
        items = list(queryset.order_by("pk"))
        return items[index % len(items)] if items else None

    def model_rule_allows(self, req) -> bool:
        for rule_id, (key, names, max_hours, _) in self.auto_rules.items():
            if (
                key == self.world.role_key(req.role)
                and req.requester.name in names
                and req.duration_hours <= max_hours
                and req.starts_at is None
                and rule_id == req.auto_rule_id
            ):
                return True
        return False

    @property
    def auto_rules(self) -> dict:
        return self.__dict__.setdefault("_rules", {})

    def allow_from(self, req) -> None:
        """The window a request asked for, now that it is approved."""
        start = req.starts_at or self.now
        self.model.allow(
            req.requester.name,
            self.world.role_key(req.role),
            start,
            start + timedelta(hours=req.duration_hours),
        )

    # --- Requests and decisions -----------------------------------------------

    @rule(
        fault=MAYBE_FAULT,
        name=NAMES,
        key=ROLE_KEYS,
        hours=st.sampled_from([1, 8, 24]),
        starts_in=st.sampled_from(
            [None, None, None, timedelta(hours=2), timedelta(hours=30)]
        ),
        decide=st.sampled_from([None, "bob", "bob", "bob", "self", "alice"]),
    )
    def request(self, name, key, hours, starts_in, decide, fault):
        """A request (an extension when the person holds the role), decided
        at once by `decide` (None: left pending)."""

        def action():
            person = self.world.person(name)
            try:
                req = access_requests.access_request_create(
                    requester=person,
                    role=self.world.role(key),
                    reason="work",
                    duration_hours=hours,
                    actor=person.user,
                    starts_at=self.now + starts_in if starts_in else None,
                )
            except REFUSED as exc:
                return refused(exc)
            if req.status == RequestStatus.APPROVED:
                if self.model_rule_allows(req):
                    self.allow_from(req)
                return "auto-approved"
            if decide is None:
                return "pending"
            return self.approve_now(req, name if decide == "self" else decide)

        self.step(action, fault)

    def approve_now(self, req, approver):
        try:
            req = access_requests.access_request_approve(
                access_request=req, approver=self.user(approver)
            )
        except REFUSED as exc:
            return refused(exc)
        if req.status == RequestStatus.APPROVED:
            self.allow_from(req)
            return "approved"
        return "partly approved"

    @rule(index=PICK, approver=NAMES, fault=MAYBE_FAULT)
    def approve(self, index, approver, fault):
        def action():
            req = self.pick(AccessRequest.objects.filter(status="pending"), index)
            if req is None:
                return "nothing to pick"
            return self.approve_now(req, approver)

        self.step(action, fault)

    @rule(index=PICK, how=st.sampled_from(["reject", "cancel"]), fault=MAYBE_FAULT)
    def pending_ends(self, index, how, fault):
        def action():
            req = self.pick(AccessRequest.objects.filter(status="pending"), index)
            if req is None:
                return "nothing to pick"
            try:
                if how == "reject":
                    access_requests.access_request_reject(
                        access_request=req, approver=self.user("bob"), comment="no"
                    )
                else:
                    access_requests.access_request_cancel(
                        access_request=req, actor=req.requester.user
                    )
            except REFUSED as exc:
                return refused(exc)
            return how

        self.step(action, fault)

    @rule(index=PICK, by=st.sampled_from(["self", "bob", "alice"]), fault=MAYBE_FAULT)
    def revoke(self, index, by, fault):
        def action():
            g = self.pick(AccessRequest.objects.filter(status="approved"), index)
            if g is None:
                return "nothing to pick"
            actor = g.requester.user if by == "self" else self.user(by)
            try:
                access_requests.access_request_revoke(access_request=g, actor=actor)
            except REFUSED as exc:
                return refused(exc)
            self.model.truncate(g.requester.name, self.world.role_key(g.role), self.now)

        self.step(action, fault)

    @rule(
        name=st.sampled_from(["alice", "carol", "dave"]),
        key=ROLE_KEYS,
        fault=MAYBE_FAULT,
    )
    def grant_or_revoke(self, name, key, fault):
        """A toggle that makes grant, revoke, grant again likely: an 8-hour
        grant approved by bob when the person holds none on the role, else
        bob revokes it."""

        def action():
            person = self.world.person(name)
            role = self.world.role(key)
            g = AccessRequest.objects.filter(
                requester=person, role=role, status="approved"
            ).first()
            if g is None:
                try:
                    req = access_requests.access_request_create(
                        requester=person,
                        role=role,
                        reason="work",
                        duration_hours=8,
                        actor=person.user,
                    )
                except REFUSED as exc:
                    return refused(exc)
                if req.status == RequestStatus.APPROVED:
                    if self.model_rule_allows(req):
                        self.allow_from(req)
                    return "auto-approved"
                return self.approve_now(req, "bob")
            try:
                access_requests.access_request_revoke(
                    access_request=g, actor=self.user("bob")
                )
            except REFUSED as exc:
                return refused(exc)
            self.model.truncate(name, key, self.now)
            return "revoked"

        self.step(action, fault)

    @rule(
        fault=MAYBE_FAULT,
        delta=st.sampled_from(
            [
                timedelta(minutes=10),
                timedelta(minutes=61),
                timedelta(hours=9),
                timedelta(hours=25),
            ]
        ),
    )
    def time_passes(self, delta, fault):
        """Expiry, scheduled starts and reviews' deadlines come with the
        lifecycle run of the settle."""
        self.step(lambda: Harness.clock.advance(delta), fault)

    # --- Other ways in --------------------------------------------------------

    @rule(
        name=st.sampled_from(["carol", "dave", "alice"]),
        key=ROLE_KEYS,
        fault=MAYBE_FAULT,
    )
    def break_glass(self, name, key, fault):
        def action():
            person = self.world.person(name)
            try:
                g = break_glass.break_glass_activate(
                    requester=person,
                    role=self.world.role(key),
                    reason="incident",
                    actor=person.user,
                )
            except REFUSED as exc:
                return refused(exc)
            self.model.allow(name, key, self.now, self.now + timedelta(hours=1))
            assert g.break_glass

        self.step(action, fault)

    @rule(
        fault=MAYBE_FAULT,
        key=ROLE_KEYS,
        names=st.sets(NAMES, min_size=1, max_size=2),
        max_hours=st.sampled_from([1, 8, 24]),
    )
    def auto_approval_rule(self, key, names, max_hours, fault):
        def action():
            try:
                rule_row = rules.auto_rule_add(
                    actor=self.world.admin,
                    role=self.world.role(key),
                    name=f"rule {len(self.auto_rules) + 1}",
                    people=[self.user(n) for n in sorted(names)],
                    max_hours=max_hours,
                )
            except REFUSED as exc:
                return refused(exc)
            self.auto_rules[rule_row.pk] = (
                key,
                set(names),
                max_hours,
                self.world.admin.pk,
            )
            self.model.rule_creators[rule_row.pk] = self.world.admin.pk

        self.step(action, fault)

    @rule(
        index=PICK,
        reviewer=st.sampled_from(["bob", "alice"]),
        revoke=st.booleans(),
        fault=MAYBE_FAULT,
    )
    def access_review_decides(self, index, reviewer, revoke, fault):
        def action():
            open_items = AccessReviewItem.objects.filter(
                decision="", review__closed_at__isnull=True
            ).select_related("grant__requester", "grant__role")
            if not open_items.exists():
                access_reviews.review_start(
                    actor=self.world.admin, deadline=self.now + timedelta(days=7)
                )
                return "review started"
            item = self.pick(open_items, index)
            decision = "revoked" if revoke else "confirmed"
            try:
                access_reviews.review_decide(
                    item=item, actor=self.user(reviewer), decision=decision
                )
            except REFUSED as exc:
                return refused(exc)
            if revoke:
                # The reviewer ends the access this grant gave, and whatever
                # carried it on without a gap (an extension).
                g = item.grant
                key = self.world.role_key(g.role)
                start = g.starts_at or g.decided_at
                for s, e in m.union(
                    self.model.allowed.get((g.requester.name, key), [])
                ):
                    if s <= start and s <= self.now < e:
                        self.model.truncate(g.requester.name, key, self.now)

        self.step(action, fault)

    # --- People and roles -----------------------------------------------------

    @rule(
        name=st.sampled_from(["bob", "carol", "dave"]),
        again=st.booleans(),
        fault=MAYBE_FAULT,
    )
    def offboard(self, name, again, fault):
        """Offboarded; `again`: added again under the same name at once (the
        worker runs in between). An offboarded person is added again."""

        def action():
            person = self.world.person(name)
            if person.state == IamUserState.ACTIVE:
                people.person_offboard(iam_user=person, actor=self.world.admin)
                self.model.truncate(name, None, self.now)
                self.model.active[name] = False
                if not again:
                    return "offboarded"
                m.run_worker(rounds=1)
            try:
                people.person_add(
                    actor=self.world.admin,
                    account=self.world.identity,
                    iam_user_name=name,
                    email=f"{name}@example.com",
                )
            except REFUSED as exc:  # e.g. until the old IAM user is gone
                return refused(exc)
            if name == "bob":
                self.world.project.approvers.add(self.user("bob"))
            self.model.active[name] = True
            return "added again"

        self.step(action, fault)

    @rule(
        key=ROLE_KEYS,
        arns=st.sets(st.sampled_from(m.EXTRA_PRINCIPALS)),
        fault=MAYBE_FAULT,
    )
    def cross_account_principals(self, key, arns, fault):
        def action():
            role = self.world.role(key)
            before = set(role.extra_principal_arns or [])
            try:
                roles.role_principals_set(
                    role=role, extra_principal_arns=sorted(arns), actor=self.world.admin
                )
            except REFUSED as exc:
                return refused(exc)
            for arn in before - set(arns):
                self.model.endings.append((arn.rsplit("/", 1)[-1], key, self.now))

        self.step(action, fault)


def hypothesis_settings(examples: int = EXAMPLES, steps: int = STEPS) -> settings:
    """Bounded and reproducible by default (derandomized, no shrinking: a
    failure shows the whole sequence). OPSGATE_INVARIANTS_SHRINK=1 shrinks a
    counterexample; OPSGATE_INVARIANTS_RANDOM=1 draws other sequences each
    run (the long run)."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("OPSGATE_INVARIANTS_SHRINK"):
        phases.append(Phase.shrink)
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=not os.environ.get("OPSGATE_INVARIANTS_RANDOM"),
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=phases,
        print_blob=True,
    )


# While hunting for more counterexamples: a regular expression of violations
# to ignore (the ones already recorded), e.g. OPSGATE_INVARIANTS_IGNORE='^\(a\)
# identity'. Never set in CI.
IGNORE = os.environ.get("OPSGATE_INVARIANTS_IGNORE", "")


def kept(problems: list[str]) -> list[str]:
    if not IGNORE:
        return problems
    return [p for p in problems if not re.search(IGNORE, p)]


def _moto_reset(url: str) -> None:
    """moto's reset takes long once several accounts were used: a long
    timeout (conftest's aws_env allows 10 s)."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=180).read()


@pytest.fixture(scope="module")
def invariants_moto(moto_server):
    """moto reset once per module: the identity account with the AWS-managed
    policies its group needs, the workload accounts without them (loading
    them costs seconds per account), the permissions boundaries deployed.
    Examples and tests clean opsgate's roles and users themselves (Reader.clean)
    and keep the baselines. Reset again at the end, so the next module's
    quick reset does not time out."""
    from accounts_app.models import AwsAccount
    from provisioning import aws, boundaries
    from tests.conftest import deploy_boundaries

    _moto_reset(moto_server)
    aws.reset_clients()
    deploy_boundaries()
    before = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "false"
    try:
        for account_id in (m.STAGING_ID, m.PROD_ID):
            row = AwsAccount(
                account_id=account_id,
                name=account_id,
                assume_role_arn=f"arn:aws:iam::{account_id}:role/opsgate-provisioner",
            )
            boundaries.apply(account=row)
        state = {"baseline_ready": False}
        yield state
    finally:
        if before is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = before
        _moto_reset(moto_server)
        aws.reset_clients()


@pytest.fixture
def harness(invariants_moto, db, ssm_sessions, monkeypatch, settings):
    """Faults wrap opsgate's clients; opsgate's clock is the test's; AWS calls
    are not retried by botocore (a throttled call is a RetryLater at once:
    the worker's retries are the settle's passes)."""
    from provisioning import aws
    from tests.conftest import clear_cache

    aws.reset_clients()
    clear_cache()
    settings.OPSGATE = {
        **settings.OPSGATE,
        "AWS_MAX_ATTEMPTS": 1,
        "PRINCIPAL_PROPAGATION_SECONDS": 0,
        # moto lacks ListServiceSpecificCredentials.
        "DELETE_SERVICE_CREDENTIALS": False,
    }
    faults = m.Faults()
    faults.install(monkeypatch)
    clock = m.Clock()
    clock.install()
    Harness.clock, Harness.faults, Harness.reader = clock, faults, m.Reader()
    Harness.ssm = ssm_sessions
    Harness.moto = invariants_moto
    Harness.stats = Counter()
    try:
        yield Harness
    finally:
        clock.uninstall()
        aws.reset_clients()
        if os.environ.get("OPSGATE_INVARIANTS_STATS"):
            for (name, outcome), count in sorted(Harness.stats.items()):
                print(f"{name:32} {outcome:16} {count}")


def test_access_invariants_hold_whatever_the_services_and_aws_faults_do(harness):
    run_state_machine_as_test(AccessInvariants, settings=hypothesis_settings())
