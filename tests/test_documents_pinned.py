"""Rules of the IAM documents pinned one by one: every partition, the exact
size IAM counts, the comparison of each condition type, and the revocation
cutoff in UTC whatever the local time zone.

test_policies.py compares whole documents in the default partition; these
cover what a whole-document pin in one partition cannot.
"""

import json
import os
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from provisioning import policies, service_policy

ACCOUNT = "111122223333"
PARTITIONS = ["aws", "aws-cn", "aws-us-gov"]


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _arns(document):
    return [s for s in _strings(document) if s.startswith("arn:")]


@pytest.mark.parametrize("partition", PARTITIONS)
def test_every_arn_of_the_group_policies_is_in_the_accounts_partition(partition):
    documents = policies.group_policies(
        prefix="opsgate-", account_id=ACCOUNT, path="/opsgate/", partition=partition
    )
    arns = [a for d in documents.values() for a in _arns(d)]
    assert arns, "the group policies name their resources"
    assert all(a.startswith(f"arn:{partition}:") for a in arns), arns


@pytest.mark.parametrize("partition", PARTITIONS)
def test_every_arn_of_the_role_policies_is_in_the_accounts_partition(partition):
    documents = policies.role_policies(
        prefix="opsgate-",
        session_documents=["SSM-SessionManagerRunShell"],
        partition=partition,
    )
    arns = [a for d in documents.values() for a in _arns(d)]
    assert any(":document/SSM-SessionManagerRunShell" in a for a in arns)
    assert all(a.startswith(f"arn:{partition}:") for a in arns), arns


@pytest.mark.parametrize("partition", PARTITIONS)
def test_every_arn_of_the_service_policy_is_in_the_accounts_partition(partition):
    document = service_policy.opsgate_service_policy(
        account_id=ACCOUNT,
        path="/opsgate/",
        prefix="opsgate-",
        group_name="opsgate-operators",
        boundary_name="opsgate-OperationRoleBoundary",
        user_boundary_name="opsgate-OperatorBoundary",
        partition=partition,
    )
    arns = _arns(document)
    assert any(a.endswith(":group/opsgate/opsgate-operators") for a in arns)
    assert all(a.startswith(f"arn:{partition}:") for a in arns), arns


@pytest.mark.parametrize("partition", PARTITIONS)
def test_arn_builders_use_the_partition(partition):
    kw = {"account_id": ACCOUNT, "path": "/opsgate/", "partition": partition}
    assert (
        policies.user_arn(name="alice", **kw)
        == f"arn:{partition}:iam::{ACCOUNT}:user/opsgate/alice"
    )
    assert (
        policies.role_arn(name="r", **kw)
        == f"arn:{partition}:iam::{ACCOUNT}:role/opsgate/r"
    )
    assert (
        policies.policy_arn(name="p", **kw)
        == f"arn:{partition}:iam::{ACCOUNT}:policy/opsgate/p"
    )
    assert (
        policies.aws_managed_policy_arn("X", partition)
        == f"arn:{partition}:iam::aws:policy/X"
    )
    assert (
        policies.assumed_role_session_arn(
            account_id=ACCOUNT, role_name="r", session_name="alice", partition=partition
        )
        == f"arn:{partition}:sts::{ACCOUNT}:assumed-role/r/alice"
    )


def test_trust_policy_size_is_the_length_iam_counts():
    # Written out by hand, without white space: the number IAM compares with
    # AssumeRolePolicySizeQuota.
    principal = f"arn:aws:iam::{ACCOUNT}:user/opsgate/alice"
    expected = (
        '{"Version":"2012-10-17","Statement":[{"Sid":"ApprovedOperatorsWithMfa",'
        '"Effect":"Allow","Principal":{"AWS":["' + principal + '"]},'
        '"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent"'
        ':"true"},"StringEquals":{"sts:RoleSessionName":"${aws:username}"}}},'
        '{"Sid":"NoSessionTags","Effect":"Deny","Principal":{"AWS":"*"},'
        '"Action":"sts:TagSession"}]}'
    )
    assert json.loads(expected) == policies.trust_policy([principal])
    assert policies.trust_policy_size([principal]) == len(expected)
    # Each further principal costs its ARN, two quotes and a comma.
    second = f"arn:aws:iam::{ACCOUNT}:user/opsgate/bob"
    assert (
        policies.trust_policy_size([principal, second])
        == len(expected) + len(second) + 3
    )


def test_minified_documents_have_no_white_space_and_only_ascii():
    text = policies.minified({"a": ["b c", "決"], "d": {"e": 1}})
    assert text == '{"a":["b c","\\u6c7a"],"d":{"e":1}}'


# --- canonical comparison, one condition type at a time -------------------------


@pytest.mark.parametrize(
    ("operator", "key", "value", "other"),
    [
        ("Bool", "aws:MultiFactorAuthPresent", "true", "false"),
        ("BoolIfExists", "aws:MultiFactorAuthPresent", "false", "true"),
        ("StringEquals", "sts:RoleSessionName", "${aws:username}", "${aws:userid}"),
        ("StringLike", "aws:userid", "AROA*:alice", "AROA*:*"),
        ("ArnEquals", "iam:PermissionsBoundary", "arn:aws:iam::1:policy/a", "*"),
        (
            "DateLessThan",
            "aws:TokenIssueTime",
            "2026-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        ),
        ("ForAllValues:StringNotLike", "aws:TagKeys", "opsgate*", "*"),
        ("NumericLessThanEquals", "aws:MultiFactorAuthAge", "3600", "360000"),
    ],
)
def test_a_changed_condition_value_is_a_different_document(operator, key, value, other):
    def document(v):
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Resource": "*",
                    "Condition": {operator: {key: v}},
                }
            ],
        }

    assert policies.same_document(document(value), document([value]))
    assert not policies.same_document(document(value), document(other))
    assert not policies.same_document(document(value), document([value, other]))


def test_booleans_compare_as_iam_stores_them():
    # IAM returns condition booleans as strings; a JSON true is the same
    # document as "true", and false is never the same as true.
    true_doc = {"Condition": {"Bool": {"aws:SecureTransport": True}}}
    false_doc = {"Condition": {"Bool": {"aws:SecureTransport": False}}}
    assert policies.same_document(
        true_doc, {"Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    )
    assert policies.same_document(
        false_doc, {"Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    )
    assert not policies.same_document(true_doc, false_doc)
    assert policies.canonical(False) == "false"
    assert policies.canonical(True) == "true"


def test_an_mfa_condition_flipped_to_false_in_aws_is_drift():
    ours = policies.trust_policy([f"arn:aws:iam::{ACCOUNT}:user/opsgate/alice"])
    theirs = json.loads(json.dumps(ours))
    theirs["Statement"][0]["Condition"]["Bool"]["aws:MultiFactorAuthPresent"] = False
    assert not policies.same_document(ours, theirs)
    assert not policies.same_document(json.dumps(ours), json.dumps(theirs))


def test_canonical_keeps_the_order_of_statements_and_numbers():
    a = {"Statement": [{"Sid": "A"}, {"Sid": "B"}]}
    b = {"Statement": [{"Sid": "B"}, {"Sid": "A"}]}
    assert not policies.same_document(a, b)
    assert policies.canonical(3600) == 3600
    assert policies.canonical(["b", "a"]) == ["a", "b"]
    assert policies.canonical([{"x": 1}]) == {"x": 1}


# --- the revocation cutoff ------------------------------------------------------


@pytest.fixture
def tokyo_local_time():
    """The process's local time zone nine hours ahead of UTC, as on a server
    outside UTC; the cutoff must not move with it."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_the_revocation_cutoff_is_utc_whatever_the_local_time_zone(tokyo_local_time):
    tokyo = timezone(timedelta(hours=9))
    when = datetime(2026, 11, 30, 21, 15, 0, tzinfo=tokyo)
    assert policies.iso8601(when) == "2026-11-30T12:15:00Z"
    assert policies.iso8601(when.astimezone(UTC)) == "2026-11-30T12:15:00Z"


def test_the_revocation_cutoff_rounds_up_to_the_next_whole_second():
    when = datetime(2026, 11, 30, 12, 15, 0, 1, tzinfo=UTC)
    assert policies.iso8601(when) == "2026-11-30T12:15:01Z"
    assert policies.iso8601(when.replace(microsecond=0)) == "2026-11-30T12:15:00Z"


def test_the_revoked_sessions_policy_states_the_cutoff_in_utc(tokyo_local_time):
    tokyo = timezone(timedelta(hours=9))
    document = policies.revoked_sessions_policy(
        role_id="AROAEXAMPLE",
        revoked={"alice": datetime(2026, 12, 1, 0, 0, 0, tzinfo=tokyo)},
    )
    (statement,) = document["Statement"]
    assert statement["Condition"]["DateLessThan"] == {
        "aws:TokenIssueTime": "2026-11-30T15:00:00Z"
    }
    assert statement["Condition"]["StringLike"] == {"aws:userid": "AROAEXAMPLE:alice"}


def test_the_cutoff_of_a_time_in_djangos_local_zone_is_utc(tokyo_local_time):
    # A revocation time read back from the database under a non-UTC TIME_ZONE
    # arrives in that zone; the policy still states it in UTC.
    from django.test import override_settings
    from django.utils import timezone as dj_timezone

    with override_settings(TIME_ZONE="Asia/Tokyo"):
        local = dj_timezone.localtime(datetime(2026, 11, 30, 15, 0, 0, tzinfo=UTC))
        assert local.hour == 0 and local.utcoffset() == timedelta(hours=9)
        document = policies.revoked_sessions_policy(
            role_id="AROAEXAMPLE", revoked={"alice": local}
        )
    (statement,) = document["Statement"]
    assert statement["Condition"]["DateLessThan"] == {
        "aws:TokenIssueTime": "2026-11-30T15:00:00Z"
    }


# --- defaults, tags and comparison helpers --------------------------------------


def test_arns_default_to_the_commercial_partition():
    kw = {"account_id": ACCOUNT, "path": "/opsgate/"}
    assert policies.user_arn(name="a", **kw) == f"arn:aws:iam::{ACCOUNT}:user/opsgate/a"
    assert policies.role_arn(name="r", **kw) == f"arn:aws:iam::{ACCOUNT}:role/opsgate/r"
    assert (
        policies.policy_arn(name="p", **kw)
        == f"arn:aws:iam::{ACCOUNT}:policy/opsgate/p"
    )
    assert policies.aws_managed_policy_arn("X") == "arn:aws:iam::aws:policy/X"
    arns = [
        a
        for d in (
            *policies.group_policies(
                prefix="p-", account_id=ACCOUNT, path="/opsgate/"
            ).values(),
            *policies.role_policies(
                prefix="p-", session_documents=["SSM-SessionManagerRunShell"]
            ).values(),
        )
        for a in _arns(d)
    ]
    assert arns and all(a.startswith("arn:aws:") for a in arns)


def test_a_trust_policy_without_principals_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="at least one principal"):
        policies.trust_policy([])


def test_tag_dict_reads_iams_key_and_value_pairs():
    tags = [{"Key": "Project", "Value": "payments"}, {"Key": "ManagedBy", "Value": "x"}]
    assert policies.tag_dict(tags) == {"Project": "payments", "ManagedBy": "x"}
    assert policies.tag_dict(None) == {}
    assert policies.tag_dict([]) == {}


def test_only_the_managed_by_opsgate_tag_marks_an_object_as_opsgates():
    assert policies.managed_tags() == [{"Key": "ManagedBy", "Value": "opsgate"}]
    assert policies.is_managed(policies.managed_tags())
    assert policies.is_managed(policies.role_tags(project="p", os_user="u"))
    assert not policies.is_managed([{"Key": "ManagedBy", "Value": "terraform"}])
    assert not policies.is_managed([{"Key": "Owner", "Value": "opsgate"}])
    assert not policies.is_managed(None)


def test_same_document_reads_json_text_on_either_side():
    document = policies.trust_policy([f"arn:aws:iam::{ACCOUNT}:user/opsgate/alice"])
    assert policies.same_document(json.dumps(document), document)
    assert policies.same_document(document, json.dumps(document))
    assert policies.same_document(json.dumps(document), json.dumps(document))
