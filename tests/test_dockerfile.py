"""The Dockerfile stays in step with the code: every package copied, the served port and path
match the defaults, the store on a volume, not root. (No Docker daemon is needed to check.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_every_package_is_copied_and_installed():
    """The packages pyproject.toml installs are all copied into the image before `pip install .`."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for package in {name.split(".")[0] for name in include}:  # subpackages come with their top
        assert re.search(rf"^COPY {package} \./{package}$", DOCKERFILE, re.M), package
    assert "RUN pip install ." in DOCKERFILE


def test_serves_http_on_the_default_port_with_a_health_check():
    """CMD is `invite-bot serve --http`; EXPOSE and PORT agree; the health check asks /healthz."""
    from bot.runtime.config import Settings
    from bot.runtime.web import HEALTH_PATH

    assert 'CMD ["invite-bot", "serve", "--http"]' in DOCKERFILE
    port = Settings.model_fields["port"].default
    assert f"EXPOSE {port}" in DOCKERFILE and f"PORT={port}" in DOCKERFILE
    assert HEALTH_PATH in DOCKERFILE


def test_store_on_a_volume_and_not_root():
    """INVITE_DB_PATH points into the declared volume; the process runs as an unprivileged user."""
    volume = re.search(r'^VOLUME \["(.+)"\]$', DOCKERFILE, re.M)[1]
    db_path = re.search(r"INVITE_DB_PATH=(\S+)", DOCKERFILE)[1]
    assert db_path.startswith(volume + "/")
    assert re.search(r"^USER (?!root)\w+$", DOCKERFILE, re.M)
