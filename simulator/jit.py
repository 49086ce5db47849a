"""JIT runner configs issued by the simulator: opaque base64 of a small JSON document.

The document names the simulator base URL, the runner id/name, its scale set and a
per-runner secret. The blob and the secret are credentials: never log or print them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

_KIND = "gha-scalesets-simulator/jit-v1"


class InvalidJitConfig(ValueError):
    """The blob is not a JIT config issued by this simulator."""


@dataclass(frozen=True)
class JitConfig:
    url: str
    runner_id: int
    runner_name: str
    scale_set_id: int
    secret: str = field(repr=False)

    def encode(self) -> str:
        document = {
            "kind": _KIND,
            "url": self.url,
            "runnerId": self.runner_id,
            "runnerName": self.runner_name,
            "scaleSetId": self.scale_set_id,
            "secret": self.secret,
        }
        return base64.b64encode(json.dumps(document).encode()).decode()

    @classmethod
    def decode(cls, blob: str) -> JitConfig:
        try:
            document = json.loads(base64.b64decode(blob.strip(), validate=True))
            if document.get("kind") != _KIND:
                raise InvalidJitConfig("the JIT config was not issued by the simulator")
            return cls(
                url=str(document["url"]),
                runner_id=int(document["runnerId"]),
                runner_name=str(document["runnerName"]),
                scale_set_id=int(document["scaleSetId"]),
                secret=str(document["secret"]),
            )
        except InvalidJitConfig:
            raise
        except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
            raise InvalidJitConfig(
                "the JIT config is not valid (expected the base64 'encodedJITConfig' "
                "returned by the simulator's generatejitconfig)"
            ) from None
