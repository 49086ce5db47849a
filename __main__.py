"""Pulumi program: runner scale sets and their listener, configured per stack.

See docs/components.md ("Deploy for real") and Pulumi.example-*.yaml for the configuration.
"""

from gha_scalesets.components.program import main

main()
