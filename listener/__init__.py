"""The scale-set listener: long-polls GitHub and keeps ephemeral runners at the job count."""
