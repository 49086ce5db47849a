"""Runner scale sets only: two scale sets of one organization, no listener.

    pulumi config set githubConfigUrl https://github.com/acme
    pulumi config set --secret githubToken ghp_...
    pulumi up

See docs/scale-sets.md. ``tests/examples/`` runs this file under Pulumi mocks and through the
real engine against the local simulator.
"""

import pulumi

from gha_scalesets import ScaleSet, ScaleSetArgs

cfg = pulumi.Config()
org = cfg.require("githubConfigUrl")  # org, owner/repo, or enterprises/<slug>
token = cfg.require_secret("githubToken")

linux = ScaleSet(
    "linux",
    ScaleSetArgs(
        github_config_url=org,
        name="linux-x64",  # what workflows put in runs-on
        labels=["linux-x64", "docker"],  # default [name]
        github_token=token,
    ),
)
gpu = ScaleSet(
    "gpu",
    ScaleSetArgs(
        github_config_url=org,
        name="gpu-x64",
        runner_group="Default",
        disable_update=True,
        github_token=token,
    ),
)

pulumi.export("scaleSetIds", {"linux-x64": linux.scale_set_id, "gpu-x64": gpu.scale_set_id})
