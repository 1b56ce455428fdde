"""The awork invite bot: everything that is not a Slack listener (see README, Layout)."""

import sys

# httpx's package imports its command-line client whenever click, rich and pygments are
# installed (the dev extras bring them): ~35 ms and 80 modules at every start, for a program
# the bot never runs. None in sys.modules makes that import fail, which httpx expects.
sys.modules.setdefault("httpx._main", None)
