import subprocess
import sys

import pytest
from servicekit.settings import Env, SettingsError


def test_defaults_apply_when_unset_or_empty() -> None:
    env = Env({"PORT": "  "})
    assert env.port("PORT", 8080) == 8080
    assert env.text("HOST", "127.0.0.1") == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("PORT", "abc", lambda e: e.port("PORT", 1)),
        ("PORT", "70000", lambda e: e.port("PORT", 1)),
        ("PORT", "0", lambda e: e.port("PORT", 1)),
        ("TIMEOUT_S", "-1", lambda e: e.number("TIMEOUT_S", 1.0, minimum=0.0)),
        ("FLAG", "maybe", lambda e: e.flag("FLAG", False)),
        ("BOOKS_URL", "ftp://x", lambda e: e.url("BOOKS_URL", "http://a:1")),
        ("BOOKS_URL", "http://x:99999", lambda e: e.url("BOOKS_URL", "http://a:1")),
        ("ADDR", "nohost", lambda e: e.address("ADDR", "a:1")),
        ("ENGINE", "nope", lambda e: e.text("ENGINE", "espeak", choices=("espeak", "google"))),
    ],
)
def test_bad_values_name_the_variable(name, value, read) -> None:
    with pytest.raises(SettingsError) as caught:
        read(Env({name: value}))
    message = str(caught.value)
    assert message.startswith(f"invalid setting {name}=")
    assert "\n" not in message


def test_good_values_parse() -> None:
    env = Env({"PORT": "9000", "F": "off", "U": "http://h:1/", "A": "h:50051", "X": "2.5"})
    assert env.port("PORT", 1) == 9000
    assert env.flag("F", True) is False
    assert env.url("U", "http://d:2") == "http://h:1"
    assert env.address("A", "d:1") == "h:50051"
    assert env.number("X", 1.0, minimum=0.0, maximum=3.0) == 2.5


def test_load_or_exit_prints_one_line_and_exits_2() -> None:
    code = (
        "from servicekit.settings import Env, load_or_exit\n"
        "load_or_exit(lambda: Env({'PORT': 'x'}).port('PORT', 1), 'demo')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "demo: invalid setting PORT='x': expected an integer from 1 to 65535"
    ]
