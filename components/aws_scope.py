"""The AWS partition, region and account a listener is deployed to, for building ARNs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsScope:
    partition: str
    region: str
    account_id: str

    def arn(self, service: str, resource: str, *, regional: bool = True, owned: bool = True) -> str:
        """``arn:<partition>:<service>:<region>:<account>:<resource>`` (region/account optional)."""
        region = self.region if regional else ""
        account = self.account_id if owned else ""
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def service_host(self, service: str) -> str:
        """The regional endpoint name AWS uses in ``kms:ViaService`` conditions."""
        return f"{service}.{self.region}.amazonaws.com"


def lookup_scope(parent: pulumi.Resource) -> pulumi.Output[AwsScope]:
    """Ask the AWS provider of ``parent`` (the one the user configured) where it deploys."""
    opts = pulumi.InvokeOutputOptions(parent=parent)
    return pulumi.Output.all(
        aws.get_partition_output(opts=opts).partition,
        aws.get_region_output(opts=opts).region,
        aws.get_caller_identity_output(opts=opts).account_id,
    ).apply(lambda v: AwsScope(partition=v[0], region=v[1], account_id=v[2]))
