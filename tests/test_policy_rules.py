"""The policy's rules apart from Slack: matching, rulings, the daily counter in both stores,
and the policy file kept in force when an edit does not validate."""

from __future__ import annotations

import threading

import pytest

from bot.domain.policy import DomainSet, PolicyError, Route, parse_policy
from bot.services.policy import PolicyFile, PolicyGate
from tests.test_store import (  # noqa: F401
    engine,
    open_engine,
    opener,
)

POLICY = parse_policy(
    """
approved_domains = ["ours.example", "*.agency.example"]
blocked_domains = ["mailinator.com", "*.spam.example"]
[[routes]]
name = "berlin"
channels = ["CBERLIN"]
approvers = ["UBERLIN"]
[[routes]]
name = "design"
teams = ["Design"]
roles = ["Member"]
"""
)


@pytest.mark.parametrize(
    ("address", "entry"),
    [
        ("a@ours.example", "ours.example"),
        ("a@OURS.Example.", "ours.example"),
        ("a@sub.ours.example", None),  # an exact entry does not take subdomains
        ("a@agency.example", None),  # *.x takes subdomains, not x itself
        ("a@berlin.agency.example", "*.agency.example"),
        ("a@a.b.agency.example", "*.agency.example"),
        ("a@notagency.example", None),
        ("a@ours.example.evil.com", None),
    ],
)
def test_domain_entries_match_exactly_or_their_subdomains(address, entry):
    """An entry matches its domain exactly; `*.d` matches subdomains of d only."""
    assert DomainSet(["ours.example", "*.agency.example"]).match(address) == entry


def test_a_blocked_domain_comes_before_everything_else():
    """Blocked wins over routes and roles; nothing about the request is asked."""
    ruling = POLICY.judge("x@a.spam.example", "Admin", True, ["design"], "CBERLIN")
    assert (ruling.outcome, ruling.rule, ruling.why) == (
        "refused",
        "blocked_domains: *.spam.example",
        "blocked_domain",
    )


def test_the_first_matching_route_wins_and_teams_match_in_any_case():
    """Asked in CBERLIN for team design: the berlin route (first) decides."""
    assert POLICY.judge("a@x.com", None, False, ["DESIGN"], "CBERLIN").rule == "routes.berlin"
    assert POLICY.judge("a@x.com", "member", False, ["DESIGN"], "COTHER").rule == "routes.design"
    assert POLICY.judge("a@x.com", None, False, ["Sales"], "COTHER").rule == "default"


def test_a_role_outside_the_route_is_refused_and_no_role_is_awork_default():
    """design allows Member only: Admin is refused naming it; no role asked is allowed."""
    refused = POLICY.judge("a@x.com", "Admin", True, ["Design"], None)
    assert (refused.outcome, refused.rule, refused.entry) == (
        "refused",
        "routes.design.roles",
        "Admin",
    )
    assert POLICY.judge("a@x.com", None, False, ["Design"], None).outcome == "asked"


def test_an_approved_domain_never_approves_an_admin_role():
    """ours.example with an admin role goes to the approvers (their two-approval rule)."""
    assert POLICY.judge("a@ours.example", "Member", False).outcome == "approved"
    assert POLICY.judge("a@ours.example", "Admin", True).outcome == "asked"


def test_role_and_team_names_awork_lacks_are_mistakes():
    """Checked against awork's catalog: each unknown name is named with its route."""
    assert POLICY.unknown_names(["member"], ["design"]) == []
    [mistake] = POLICY.unknown_names(["Admin"], ["Design"])
    assert "routes[1].roles (design)" in mistake and "'Member'" in mistake


def test_a_route_without_teams_or_channels_is_a_mistake():
    """A route that could never match is refused, naming it."""
    with pytest.raises(PolicyError) as caught:
        parse_policy('[[routes]]\nname = "x"\n')
    assert "routes[0] (line 1)" in caught.value.mistakes[0]
    assert Route(name="ok", channels=["C123"]).matches([], "C123")


def test_the_daily_counter_never_passes_its_limit_under_concurrency(opener):  # noqa: F811
    """Two store handles (two replicas), 40 threads asking for 1-3 each: exactly the limit."""
    stores = [opener(), opener()]
    granted: list[int] = []
    start = threading.Barrier(40)

    def ask(number: int) -> None:
        start.wait()
        granted.append(stores[number % 2].take_quota("2026-12-04|U1", number % 3 + 1, 25))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 25
    assert stores[0].take_quota("2026-12-04|U2", 5, 25) == 5  # per key
    assert stores[1].forget_quotas("2026-12-05") == 2
    assert stores[0].take_quota("2026-12-04|U1", 1, 25) == 1  # forgotten: counted afresh


def test_the_gate_counts_people_per_requester_and_day(opener):  # noqa: F811
    """daily_limit 2: 3 asked, 2 counted, and the reset is the next UTC midnight."""
    gate = PolicyGate(opener(), lambda: parse_policy("daily_limit = 2"))
    first = gate.take("U1", 3)
    assert first.granted == 2 and gate.take("U1", 1).granted == 0
    assert gate.take("U2", 1).granted == 1
    assert (first.resets_at.hour, first.resets_at.minute) == (0, 0)


def test_an_invalid_edit_keeps_the_last_good_policy(tmp_path):
    """Re-read on change (looked at every few seconds); a broken edit leaves the old one."""
    path = tmp_path / "p.toml"
    path.write_text('blocked_domains = ["a.example"]\n')
    now = [0.0]
    kept = PolicyFile(str(path), check_every=5, clock=lambda: now[0])
    kept.load()
    path.write_text('blocked_domains = ["b.example"]\nnonsense = 1\n')
    now[0] = 1.0
    assert kept.current.blocked_domains == ["a.example"]  # not looked at yet
    now[0] = 6.0
    assert kept.current.blocked_domains == ["a.example"] and "nonsense" in kept.problem
    path.write_text('blocked_domains = ["c.example"]\n')
    now[0] = 12.0
    assert kept.current.blocked_domains == ["c.example"] and kept.problem is None


def test_names_are_checked_once_the_catalog_is_known(tmp_path):
    """Read before awork's roles are known, the policy is checked again once they are."""
    path = tmp_path / "p.toml"
    path.write_text('[[routes]]\nname = "d"\nteams = ["Desgin"]\n')
    names: list = [None]
    kept = PolicyFile(str(path), names=lambda: names[0])
    kept.load()
    names[0] = (["Member"], ["Design"])
    assert kept.refresh() is False and "no team 'Desgin'" in kept.problem
    assert kept.current.routes[0].teams == ["Desgin"]  # the last good stays in force


def test_a_request_past_the_limit_is_not_stored(opener):  # noqa: F811
    """`add(counted=...)`: counted in the insert's transaction; at the limit nothing is kept."""
    from bot.domain.details import InviteDetails
    from bot.domain.records import InviteRequest
    from bot.store.base import LimitReached

    store = opener()
    first = InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.com"))
    store.add(first, counted=("2026-12-04|U1", 1))
    second = InviteRequest(requester_id="U1", details=InviteDetails(email="b@x.com"))
    with pytest.raises(LimitReached):
        store.add(second, counted=("2026-12-04|U1", 1))
    assert store.get(second.id) is None and store.open_addresses(["b@x.com"]) == {}
    assert store.get(first.id) is not None
    assert store.take_quota("2026-12-04|U1", 1, 2) == 1  # the refused one was not counted


def test_the_route_index_finds_what_trying_each_route_in_order_finds():
    """Routes found by index agree with the first `Route.matches` in order, on random cases."""
    import random

    from bot.domain.policy import Policy

    rng = random.Random(4)
    teams, channels = [f"Team{i}" for i in range(12)], [f"C{i:03d}" for i in range(12)]
    routes = [
        Route(
            name=f"r{n}",
            teams=rng.sample(teams, rng.randint(0, 3)),
            channels=rng.sample(channels, rng.randint(1, 2)),
        )
        for n in range(30)
    ]
    policy = Policy(routes=routes)
    for _ in range(500):
        asked = [t.upper() for t in rng.sample(teams, rng.randint(0, 3))]
        channel = rng.choice([*channels, None])
        folded = {t.casefold() for t in asked}
        expected = next((r for r in routes if r.matches(folded, channel)), None)
        assert policy.route_for(asked, channel) == expected


def test_international_domains_match_in_either_spelling():
    """bücher.de in the policy or as xn--bcher-kva.de: an address in either form matches."""
    unicode_entry = parse_policy('blocked_domains = ["bücher.de"]')
    punycode_entry = parse_policy('blocked_domains = ["*.xn--bcher-kva.de"]')
    assert unicode_entry.blocked("a@bücher.de") == "xn--bcher-kva.de"
    assert unicode_entry.blocked("a@xn--bcher-kva.de") == "xn--bcher-kva.de"
    assert punycode_entry.blocked("a@shop.bücher.de") == "*.xn--bcher-kva.de"


def test_an_empty_file_is_a_policy_without_rules():
    """`policy check` of an empty file says in words that there are no rules."""
    from bot.domain.policy import describe

    assert parse_policy("").empty and not POLICY.empty
    assert describe(parse_policy(""))[0].startswith("No rules")
