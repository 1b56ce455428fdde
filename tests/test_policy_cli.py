"""Issue 18's command line: `invite-bot policy check` names every mistake of a policy file in
one line each (never a traceback), `policy explain` says which rule decides a request, `serve`
and the shell refuse an invalid policy in one line, and `doctor` has a line for it. Run
in-process through `bot.cli.main.main`, in a folder of its own with only the given
configuration."""

from __future__ import annotations

import pytest

from bot.cli.doctor.policy import policy_check
from bot.cli.main import main
from bot.store import SqliteStore
from tests.conftest import make_settings

POLICY = """\
requesters = ["U0ADA", "S0LEADS"]
approved_domains = ["example.com", "*.example.org"]
blocked_domains = ["mailinator.com"]
daily_limit = 20

[[routes]]
name = "design"
teams = ["Design"]
channels = ["C0DESIGN"]
admin_channel = "C0DESIGNAPP"
approvers = ["U0LEAD"]
roles = ["Member", "Project Manager"]
"""
DEFAULTS = {"INVITE_ADMIN_CHANNEL": "CADMIN", "INVITE_APPROVERS": "U0OLGA,U0SAM"}


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """`invite-bot ARGS` in tmp_path (no .env there) with only the given configuration:
    (exit code, stdout lines, stderr lines)."""
    import os

    for name in list(os.environ):
        if name.startswith(("SLACK_", "AWORK_", "INVITE_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bot.runtime.logs.configure", lambda settings: None)

    def run(*args: str, **env: str) -> tuple[int, list[str], list[str]]:
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                scoped.setenv(name, value)
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's one line
                code = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out.splitlines(), err.splitlines()

    return run


def with_catalog(tmp_path, roles=("Admin", "Member", "Project Manager"), teams=("Design",)):
    """The store in tmp_path holding awork's roles and teams, as the bot keeps them."""
    store = SqliteStore(str(tmp_path / "invite-bot.sqlite"))
    store.set_meta(
        "roles",
        [
            {"id": f"r{n}", "name": name, "isAdminRole": name == "Admin"}
            for n, name in enumerate(roles)
        ],
    )
    store.set_meta("teams", [{"id": f"t{n}", "name": name} for n, name in enumerate(teams)])
    store.close()


# --- policy check --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mistake"),
    [
        ('colour = "red"\n', "colour (line 1): not a key of the policy file"),
        (
            'daily_limit = 5\napproved_domains = ["not a domain"]\n',
            "approved_domains[0] (line 2): 'not a domain' is not a domain",
        ),
        ('requesters = ["X0ADA"]\n', "requesters[0] (line 1): 'X0ADA' is not a Slack user id"),
        ("daily_limit = 0\n", "daily_limit (line 1): 0 is not a whole number of at least 1"),
        (
            '[[routes]]\nname = "design"\nadmin_channel = "C0X"\n',
            "routes[0] (line 1): a route needs `teams` or `channels`",
        ),
        (
            '[[routes]]\nname = "a"\nteams = ["X"]\n[[routes]]\nname = "A"\nchannels = ["C0X"]\n',
            "routes: route names must differ: a twice",
        ),
        (
            'approved_domains = ["a.com"]\nblocked_domains = ["A.com"]\n',
            "blocked_domains (line 2): also in approved_domains: a.com",
        ),
        ('blocked_domains = ["a.com"]\ndaily_limit = \n', "not TOML: Invalid value (at line 2"),
    ],
    ids=[
        "unknown-key",
        "bad-domain",
        "bad-id",
        "daily-limit-0",
        "route-matches-nothing",
        "route-name-twice",
        "approved-and-blocked",
        "toml-syntax",
    ],
)
def test_each_mistake_is_one_line_naming_the_file_and_exits_1(cli, tmp_path, text, mistake):
    """A policy file with one mistake: one line on stderr, `invite-bot: FILE: <mistake>`."""
    (tmp_path / "p.toml").write_text(text)
    code, out, err = cli("policy", "check", "p.toml")
    assert code == 1 and out == []
    assert len(err) == 1 and err[0].startswith(f"invite-bot: p.toml: {mistake}"), err


def test_every_mistake_has_its_line(cli, tmp_path):
    """Two mistakes are two lines, each naming its key and line."""
    (tmp_path / "p.toml").write_text('daily_limit = 0\n\n[[routes]]\nname = "x"\nteams = 3\n')
    code, _, err = cli("policy", "check", "p.toml")
    assert code == 1 and len(err) == 2
    assert err[0].startswith("invite-bot: p.toml: daily_limit (line 1): ")
    assert err[1].startswith("invite-bot: p.toml: routes[0].teams (line 5): ")


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda path: None, "No such file or directory"),
        (lambda path: path.mkdir(), "Is a directory"),
        (lambda path: path.write_bytes(b'requesters = ["\xff"]\n'), "not UTF-8 text"),
    ],
    ids=["missing", "directory", "not-utf8"],
)
def test_a_file_that_cannot_be_read_is_one_line(cli, tmp_path, make, why):
    """A missing file, a folder, bytes that are not UTF-8: one line saying why, exit 1."""
    make(tmp_path / "p.toml")
    code, out, err = cli("policy", "check", "p.toml")
    assert code == 1 and out == []
    assert err == [f"invite-bot: p.toml: cannot be read ({why})"]


def test_a_name_awork_lacks_is_a_mistake_once_the_store_knows_awork(cli, tmp_path):
    """With awork's roles and teams in the store, a route's team awork lacks fails the check;
    matched case-insensitively, the ones it has pass."""
    (tmp_path / "p.toml").write_text(POLICY.replace('["Design"]', '["design", "Berlin"]'))
    with_catalog(tmp_path)
    code, out, err = cli("policy", "check", "p.toml")
    assert code == 1 and out == []
    assert err == ["invite-bot: p.toml: routes[0].teams (design): awork has no team 'Berlin'"]


def test_a_valid_file_is_said_in_plain_words(cli, tmp_path):
    """Valid: "FILE: valid", then what it means; names checked against the store's catalog."""
    (tmp_path / "p.toml").write_text(POLICY)
    with_catalog(tmp_path)
    code, out, err = cli("policy", "check", "p.toml")
    assert code == 0 and err == []
    assert out[0] == "p.toml: valid"
    assert "  example.com: invited without an approver (never an admin role)." in out
    assert "  mailinator.com: refused, nobody is asked." in out
    assert "  Each requester may ask for 20 people per UTC day." in out
    assert not any("not checked" in line for line in out)


def test_without_the_catalog_names_are_said_to_be_unchecked(cli, tmp_path):
    """No store yet: valid, with one line saying role and team names were not checked - and
    no store file is made by looking."""
    (tmp_path / "p.toml").write_text(POLICY)
    code, out, _ = cli("policy", "check", "p.toml")
    assert code == 0
    assert out[-1] == (
        "Role and team names not checked against awork: no store at ./invite-bot.sqlite "
        "(INVITE_DB_PATH)."
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]


def test_the_file_defaults_to_invite_policy_and_neither_is_exit_2(cli, tmp_path):
    """`policy check` reads INVITE_POLICY; with neither a file nor it, one line and exit 2."""
    (tmp_path / "p.toml").write_text("daily_limit = 3\n")
    code, out, _ = cli("policy", "check", INVITE_POLICY="p.toml")
    assert code == 0 and out[0] == "p.toml: valid"
    code, out, err = cli("policy", "check")
    assert code == 2 and out == [] and len(err) == 1 and "set INVITE_POLICY" in err[0]


# --- policy explain ------------------------------------------------------------------------------


def explain(cli, tmp_path, *args: str) -> list[str]:
    (tmp_path / "p.toml").write_text(POLICY)
    code, out, err = cli("policy", "explain", "--policy", "p.toml", *args, **DEFAULTS)
    assert code == 0 and err == [], err
    return out


def test_explain_an_approved_domain(cli, tmp_path):
    """An address on an approved domain is invited without an approver; the limit is said."""
    out = explain(cli, tmp_path, "--requester", "U0ADA", "--email", "a@team.example.org")
    assert "rule: approved_domains: *.example.org → invited without an approver" in out
    assert any("at most 20 people per UTC day" in line for line in out)


def test_explain_a_route_and_its_role_from_the_catalog(cli, tmp_path):
    """A team of a route: asked of its approvers in its channel; the role's admin-ness comes
    from awork's roles in the store."""
    with_catalog(tmp_path)
    out = explain(
        cli, tmp_path, "--requester", "U0ADA", "--email", "a@gmail.com", "--team", "design"
    )
    assert "rule: routes.design → asked of U0LEAD in C0DESIGNAPP" in out
    out = explain(
        cli, tmp_path, *("--requester", "U0ADA", "--email", "a@gmail.com", "--role", "member")
    )
    assert "role Member: not an admin role (awork's roles as the store holds them)" in out
    assert (
        "rule: default → asked of INVITE_APPROVERS (U0OLGA, U0SAM) in INVITE_ADMIN_CHANNEL (CADMIN)"
        in out
    )


def test_explain_a_blocked_domain(cli, tmp_path):
    """A blocked domain is refused and nothing is stored."""
    out = explain(cli, tmp_path, "--requester", "U0ADA", "--email", "x@Mailinator.com")
    assert "rule: blocked_domains: mailinator.com → refused, nothing stored" in out


def test_explain_a_requester_not_listed(cli, tmp_path):
    """Not listed and no user groups: may not ask, told whom to ask; listed groups are said
    to be resolved at run time."""
    (tmp_path / "p.toml").write_text('requesters = ["U0ADA"]\n')
    code, out, _ = cli(
        *("policy", "explain", "--policy", "p.toml", "--requester", "U0BOB"),
        *("--email", "a@b.com"),
        **DEFAULTS,
    )
    assert code == 0
    assert out[-1] == (
        "rule: requesters → U0BOB may not ask; they are told to ask "
        "INVITE_APPROVERS (U0OLGA, U0SAM); nothing stored"
    )
    out = explain(cli, tmp_path, "--requester", "U0BOB", "--email", "a@b.com")
    assert (
        "requester U0BOB: not listed by id; user groups S0LEADS are resolved in Slack at run "
        "time (a member of one may ask)"
    ) in out


def test_explain_a_role_refused_on_a_route_and_an_admin_by_its_name(cli, tmp_path):
    """A role outside the route's roles is refused, naming it; with no catalog, a role named
    like admin is taken as admin (so not invited without an approver), and that is said."""
    out = explain(
        cli,
        tmp_path,
        *("--requester", "U0ADA", "--email", "a@example.com"),
        *("--role", "Workspace Admin", "--channel", "C0DESIGN"),
    )
    assert any("taken as an admin role, as its name says admin" in line for line in out)
    assert (
        "rule: routes.design.roles → refused: role Workspace Admin may not be asked for on "
        "route design (its roles: Member, Project Manager); nothing stored"
    ) in out
    out = explain(
        cli, tmp_path, "--requester", "U0ADA", "--email", "a@example.com", "--role", "Admin"
    )
    assert (
        "rule: default → asked of INVITE_APPROVERS (U0OLGA, U0SAM) in INVITE_ADMIN_CHANNEL (CADMIN)"
        in out
    )
    assert (
        "example.com is an approved domain, but an admin role is never invited without an approver"
        in out
    )


def test_explain_with_bad_arguments_or_an_invalid_policy(cli, tmp_path):
    """A requester that is no user id is one line (exit 2); an invalid policy its mistakes."""
    code, out, err = cli("policy", "explain", "--requester", "ada", "--email", "a@b.com")
    assert code == 2 and out == [] and len(err) == 1
    assert "'ada' is not a Slack user id" in err[0]
    (tmp_path / "bad.toml").write_text("daily_limit = -1\n")
    code, out, err = cli(
        "policy", "explain", "--policy", "bad.toml", "--requester", "U0A", "--email", "a@b.com"
    )
    assert code == 1 and out == [] and len(err) == 1 and "daily_limit (line 1)" in err[0]


# --- serve, doctor, shell ------------------------------------------------------------------------


def test_serve_refuses_an_invalid_policy_in_one_line(cli, tmp_path):
    """`serve` with an invalid INVITE_POLICY says the file and its mistakes in one line, exit 2 -
    checked before Slack is asked (the bot token here would be refused) and before the store
    is opened."""
    (tmp_path / "p.toml").write_text('daily_limit = 0\nowner = "me"\n')
    code, out, err = cli(
        *("serve", "--http", "--host", "127.0.0.1", "--port", "0"),
        SLACK_BOT_TOKEN="xoxb-never-asked",
        SLACK_SIGNING_SECRET="signing-secret",
        SLACK_API_URL="http://127.0.0.1:9/api/",
        INVITE_POLICY="p.toml",
        **DEFAULTS,
    )
    assert code == 2 and out == []
    assert err == [
        "invite-bot: INVITE_POLICY p.toml: daily_limit (line 1): 0 is not a whole number of "
        "at least 1; owner (line 2): not a key of the policy file"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]


def test_doctor_has_a_line_for_the_policy(tmp_path):
    """doctor: unset is fine (anyone may ask); valid counts its rules; invalid is the first
    mistake, with how to see them all; a name awork lacks fails once the store knows awork."""
    line = policy_check(make_settings(tmp_path)).line()
    assert (
        line
        == "ok  Policy: INVITE_POLICY unset: anyone may ask; INVITE_APPROVERS decide every request"
    )
    (tmp_path / "p.toml").write_text(POLICY)
    settings = make_settings(tmp_path, INVITE_POLICY=str(tmp_path / "p.toml"))
    line = policy_check(settings).line()
    assert line.startswith(
        f"ok  Policy: {tmp_path / 'p.toml'}: valid (6 rules); its role and team names not checked"
    )
    with_catalog(tmp_path, teams=("Marketing",))
    line = policy_check(settings).line()
    assert line.startswith(
        f"FAIL  Policy: {tmp_path / 'p.toml'}: routes[0].teams (design): awork has no team 'Design' — fix: run `invite-bot policy check"
    )
    (tmp_path / "p.toml").write_text("daily_limit = 0\ncolour = 1\n")
    line = policy_check(settings).line()
    assert (
        "daily_limit (line 1): 0 is not a whole number of at least 1 (and 1 more mistake)" in line
    )


def test_the_shell_refuses_an_invalid_policy_in_one_line(cli, tmp_path):
    """`shell --policy FILE` with mistakes: one line naming the option and file, exit 2."""
    (tmp_path / "p.toml").write_text('blocked_domains = ["nope"]\n')
    code, out, err = cli("shell", "--policy", "p.toml")
    assert code == 2 and out == []
    assert err == [
        "invite-bot: --policy p.toml: blocked_domains[0] (line 1): 'nope' is not a domain "
        "(example.com, or *.example.com)"
    ]


def test_serve_refuses_a_team_awork_lacks_once_the_store_knows_awork(cli, tmp_path, slack):
    """A valid file naming a team awork does not have: after Slack and the store pass, `serve`
    names it in one line, exit 2."""
    (tmp_path / "p.toml").write_text(POLICY.replace('["Design"]', '["Berlin"]'))
    with_catalog(tmp_path)
    code, _, err = cli(
        *("serve", "--http", "--host", "127.0.0.1", "--port", "0"),
        SLACK_BOT_TOKEN="xoxb-fake",
        SLACK_SIGNING_SECRET="signing-secret",
        SLACK_API_URL=slack.url,
        INVITE_POLICY="p.toml",
        **DEFAULTS,
    )
    assert code == 2 and slack.of("auth.test")
    assert err == [
        "invite-bot: INVITE_POLICY p.toml: routes[0].teams (design): awork has no team 'Berlin'"
    ]


def test_the_shell_checks_a_policys_names_against_its_awork(cli, tmp_path, monkeypatch):
    """`shell --policy FILE` naming a team the shell's awork sandbox lacks: one line, exit 2,
    and the shell's temporary store is gone."""
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "p.toml").write_text('[[routes]]\nname = "berlin"\nteams = ["Berlin"]\n')
    code, _, err = cli("shell", "--policy", "p.toml")
    assert code == 2 and list((tmp_path / "tmp").iterdir()) == []
    assert err == [
        "invite-bot: --policy p.toml: routes[0].teams (berlin): awork has no team 'Berlin'"
    ]
