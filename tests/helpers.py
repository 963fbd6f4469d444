"""One way to set up requests and grants in tests: through the services, as
the pages do, so every test starts from states the portal can reach. Shared
fixtures (personas, provisioning_runs, quiet_zero) are in conftest.py."""

from accounts_app.services import access_requests

ACCOUNT_ID = "123456789012"  # moto's default account (tests/conftest.py)


def request(person, role, hours=8, *, reason="deploy"):
    """A pending request of `person` (an IamUser) for `role`."""
    return access_requests.access_request_create(
        requester=person,
        role=role,
        reason=reason,
        duration_hours=hours,
        actor=person.user,
    )


def grant(person, role, approver, hours=8):
    """An approved request: `approver` (an IamUser) approves it."""
    req = request(person, role, hours)
    return access_requests.access_request_approve(
        access_request=req, approver=approver.user
    )


def arn(kind, name):
    """The ARN of opsgate's user, role or policy `name` in moto's account."""
    return f"arn:aws:iam::{ACCOUNT_ID}:{kind}/opsgate/{name}"


# Amazon Linux 2, as the instances opsgate's SSM documents run on. Asked by
# name: moto answers DescribeImages for all its 1,355 images with about a
# second of CPU (the XML and its parsing), one of them with a hundredth.
AMAZON_LINUX = [{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}]


def amazon_linux_image(ec2) -> str:
    """The id of an Amazon Linux 2 image (a boto3 EC2 client of the region)."""
    return ec2.describe_images(Owners=["amazon"], Filters=AMAZON_LINUX)["Images"][0][
        "ImageId"
    ]


def run_instance(ec2, project: str, name: str, *, state: str = "running") -> str:
    """An EC2 instance tagged Project=<project>, Name=<name> (a boto3 EC2
    client of the account it belongs in); its id."""
    image = amazon_linux_image(ec2)
    (item,) = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "Project", "Value": project},
                    {"Key": "Name", "Value": name},
                ],
            }
        ],
    )["Instances"]
    if state == "stopped":
        ec2.stop_instances(InstanceIds=[item["InstanceId"]])
    return item["InstanceId"]
