"""The sandbox's building blocks without HTTP: configuration, scheduler, key storage."""

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import padding

from sandbox import create_app
from sandbox.daraja import security
from sandbox.scheduler import Scheduler
from sandbox.settings import DEFAULTS, load_config


def test_environment_overrides_defaults_and_the_dict_overrides_the_environment():
    environ = {
        "SANDBOX_DARAJA_SHORTCODES": "111111, 222222",
        "SANDBOX_CALLBACK_DELAY": "hold",
        "SANDBOX_DARAJA_TOKEN_LIFETIME": "60",
        "SANDBOX_DARAJA_UTILITY_BALANCE": "5000",
        "SANDBOX_DARAJA_MODE": "Manual",
        "SANDBOX_DARAJA_CONSUMER_KEY": "from-env",
    }

    config = load_config({"SANDBOX_DARAJA_CONSUMER_KEY": "from-dict"}, environ)

    assert config["SANDBOX_DARAJA_SHORTCODES"] == ("111111", "222222")
    assert config["SANDBOX_CALLBACK_DELAY"] is None
    assert config["SANDBOX_DARAJA_TOKEN_LIFETIME"] == 60
    assert config["SANDBOX_DARAJA_UTILITY_BALANCE"] == Decimal("5000.00")
    assert config["SANDBOX_DARAJA_MODE"] == "manual"
    assert config["SANDBOX_DARAJA_CONSUMER_KEY"] == "from-dict"
    assert load_config({}, {})["SANDBOX_CALLBACK_DELAY"] == 2.0


@pytest.mark.parametrize(
    "bad",
    [
        {"SANDBOX_DARAJA_MODE": "sometimes"},
        {"SANDBOX_DARAJA_EXPIRES_IN_TYPE": "float"},
        {"SANDBOX_CALLBACK_DELAY": "-1"},
        {"SANDBOX_DARAJA_SHORTCODES": ""},
        {"SANDBOX_DARAJA_TOKEN_LIFETIME": "an hour"},
    ],
)
def test_bad_configuration_refuses_to_start(bad):
    with pytest.raises(ValueError):
        load_config(bad, {})


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parents[2] / "sandbox" / "README.md").read_text()
    for key in DEFAULTS:
        assert f"`{key}`" in readme, key


def test_flush_runs_held_jobs_and_the_jobs_they_schedule():
    scheduler = Scheduler()
    ran = []

    def second():
        ran.append("second")
        return ["delivery-2"]

    def first():
        ran.append("first")
        scheduler.schedule(second, None)
        return ["delivery-1"]

    scheduler.schedule(first, None)
    time.sleep(0.05)
    assert ran == []  # held until flush

    assert scheduler.flush() == ["delivery-1", "delivery-2"]
    assert ran == ["first", "second"]
    assert scheduler.pending() == 0


def test_background_thread_runs_due_jobs_in_order_and_clear_forgets():
    scheduler = Scheduler()
    done = threading.Event()
    ran = []
    scheduler.schedule(lambda: ran.append("later") or done.set(), 0.1)
    scheduler.schedule(lambda: ran.append("sooner"), 0.02)
    scheduler.schedule(lambda: ran.append("forgotten"), 30)

    assert done.wait(5)
    scheduler.clear()

    assert ran == ["sooner", "later"]
    assert scheduler.pending() == 0


def test_flush_waits_for_a_job_the_background_thread_is_running():
    scheduler = Scheduler()
    started, finished = threading.Event(), []

    def slow():
        started.set()
        time.sleep(0.3)
        finished.append(True)

    scheduler.schedule(slow, 0)
    assert started.wait(5)
    scheduler.flush()

    assert finished == [True]


def test_more_threads_run_jobs_due_together_at_once_and_a_chain_in_order():
    scheduler = Scheduler(threads=3)
    together, ran = threading.Barrier(3, timeout=5), []

    def posted_with_the_others(n):
        def job():
            together.wait()  # breaks (raises) unless all three run at the same time
            ran.append(n)
            if (
                n == 0
            ):  # a message's next receipt is scheduled by the job that posted the one before
                scheduler.schedule(lambda: ran.append("0, second receipt"), 0)

        return job

    for n in range(3):
        scheduler.schedule(posted_with_the_others(n), 0)
    deadline = time.monotonic() + 5
    while len(ran) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)

    assert sorted(map(str, ran)) == ["0", "0, second receipt", "1", "2"]
    assert ran.index("0, second receipt") > ran.index(0)
    with pytest.raises(ValueError, match="at least one thread"):
        Scheduler(threads=0)


def test_a_failing_job_does_not_stop_the_others():
    scheduler = Scheduler()
    scheduler.schedule(lambda: 1 / 0, None)
    scheduler.schedule(lambda: ["ok"], None)

    assert scheduler.flush() == ["ok"]


def test_configured_key_paths_keep_the_certificate_across_restarts(tmp_path):
    key_path, cert_path = tmp_path / "keys" / "key.pem", tmp_path / "keys" / "cert.pem"

    first = security.load_or_create(str(key_path), str(cert_path))
    second = security.load_or_create(str(key_path), str(cert_path))

    assert key_path.stat().st_mode & 0o777 == 0o600
    assert first.certificate_pem == second.certificate_pem == cert_path.read_bytes()
    ciphertext = first.certificate.public_key().encrypt(b"pw", padding.PKCS1v15())
    assert second.decrypt(ciphertext) == "pw"


def test_the_app_serves_the_configured_certificate(tmp_path):
    keys = security.load_or_create(str(tmp_path / "k.pem"), str(tmp_path / "c.pem"))
    app = create_app(
        {
            "SANDBOX_DARAJA_KEY_PATH": str(tmp_path / "k.pem"),
            "SANDBOX_DARAJA_CERT_PATH": str(tmp_path / "c.pem"),
        }
    )

    assert app.test_client().get("/sandbox/certificate.cer").data == keys.certificate_pem


def test_without_paths_each_app_has_its_own_key():
    no_paths = {"SANDBOX_DARAJA_KEY_PATH": None, "SANDBOX_DARAJA_CERT_PATH": None}
    first, second = create_app(no_paths), create_app(no_paths)

    assert first.extensions["daraja"].keys.certificate_pem != (
        second.extensions["daraja"].keys.certificate_pem
    )
