"""The awork invite bot: everything that is not a Slack listener (see README, Layout)."""
