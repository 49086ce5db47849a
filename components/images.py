"""Container image references: which ones live in Amazon ECR (and need a login and IAM)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ECR_IMAGE = re.compile(
    r"^(?P<registry>(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?)/"
    r"(?P<repository>[^:@]+)"
)


@dataclass(frozen=True)
class EcrImage:
    registry: str
    account: str
    region: str
    repository: str

    def repository_arn(self, partition: str) -> str:
        return f"arn:{partition}:ecr:{self.region}:{self.account}:repository/{self.repository}"


def parse_ecr_image(image: str) -> EcrImage | None:
    """The ECR coordinates of ``image``, or None for images hosted elsewhere."""
    match = _ECR_IMAGE.match(image)
    if match is None:
        return None
    return EcrImage(
        registry=match["registry"],
        account=match["account"],
        region=match["region"],
        repository=match["repository"],
    )
