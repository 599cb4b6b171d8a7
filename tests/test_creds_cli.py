"""`optterm creds` and `optterm doctor` as a user meets them; no secret is ever echoed back."""

from __future__ import annotations

from tests.conftest import Home, run_cli

API_KEY, MPIN, SECRET = "key-S3CR3T-777", "9431", "JBSWY3DPEHPK3PXPJBSWY3DP"
ENV = {
    "OPTTERM_ANGELONE_API_KEY": API_KEY,
    "OPTTERM_ANGELONE_CLIENT_CODE": "A7654321",
    "OPTTERM_ANGELONE_MPIN": MPIN,
    "OPTTERM_ANGELONE_TOTP_SECRET": SECRET,
    "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
}


def test_creds_set_without_a_keyring_explains_the_alternatives_and_echoes_nothing(
    home: Home,
) -> None:
    out = run_cli(
        home,
        "creds",
        "set",
        "angelone",
        input=f"{API_KEY}\nA7654321\n{MPIN}\n{SECRET}\n",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
    )
    assert out.returncode == 2
    assert "OPTTERM_ANGELONE_API_KEY" in out.stderr and "CREDENTIALS_DIRECTORY" in out.stderr
    for secret in (API_KEY, MPIN, SECRET):
        assert secret not in out.stdout + out.stderr


def test_doctor_and_show_see_env_credentials_masked(home: Home) -> None:
    home.write_config('[providers]\norder = ["angelone", "simulator"]\n')
    show = run_cli(home, "creds", "show", "angelone", env=ENV)
    assert show.returncode == 0 and "from env" in show.stdout
    doctor = run_cli(home, "--config", str(home.config), "doctor", env=ENV)
    assert "complete, from env" in doctor.stdout
    assert "provider angelone: can be built" in doctor.stdout
    for out in (show, doctor):
        for secret in (API_KEY, MPIN, SECRET):
            assert secret not in out.stdout + out.stderr


def test_doctor_fails_when_a_configured_provider_cannot_be_built(home: Home) -> None:
    home.write_config('[providers]\norder = ["angelone", "simulator"]\n')
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    out = run_cli(home, "--config", str(home.config), "doctor", env=env)
    assert out.returncode == 1
    assert "provider angelone: UNAVAILABLE" in out.stdout and "creds set" in out.stdout
    assert "provider simulator: can be built" in out.stdout


def test_creds_for_a_provider_that_needs_none(home: Home) -> None:
    out = run_cli(home, "creds", "show", "nse")
    assert out.returncode == 2 and "angelone" in out.stderr
