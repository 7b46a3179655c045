"""Stored settings (app/services/settings.py)."""

from cryptography.fernet import Fernet
from sqlalchemy import select

from app.extensions import db
from app.models import Setting
from app.services import settings
from app.services.actor import Actor

ACTOR = Actor.system("test")


def test_a_secret_stored_under_an_earlier_key_is_replaced_by_saving_a_new_one():
    old_key = Fernet(Fernet.generate_key())
    db.session.add(Setting(key="demo.token", value=old_key.encrypt(b"old").decode(), secret=True))
    db.session.commit()

    assert settings.save("demo", {"token": "new"}, {"token"}, ACTOR) == ["token"]
    assert settings.stored("demo") == {"token": "new"}
    stored = db.session.scalar(select(Setting.value).where(Setting.key == "demo.token"))
    assert "new" not in stored  # encrypted with today's key


def test_saving_the_same_values_again_changes_nothing():
    settings.save("demo", {"token": "same", "name": "plain"}, {"token"}, ACTOR)
    assert settings.save("demo", {"token": "same", "name": "plain"}, {"token"}, ACTOR) == []


def test_a_secret_stored_under_an_earlier_key_reads_as_not_set_and_is_logged(caplog):
    old_key = Fernet(Fernet.generate_key())
    db.session.add_all([
        Setting(key="demo.token", value=old_key.encrypt(b"old").decode(), secret=True),
        Setting(key="demo.name", value="plain", secret=False),
    ])  # fmt: skip
    db.session.commit()

    assert settings.stored("demo") == {"name": "plain"}  # no exception for every reader
    assert "demo.token cannot be decrypted" in caplog.text and "old" not in caplog.text


def test_the_settings_page_opens_with_a_secret_it_cannot_decrypt(admin_client):
    old_key = Fernet(Fernet.generate_key())
    db.session.add(Setting(key="notify.twilio.auth_token", secret=True,
                           value=old_key.encrypt(b"old-token").decode()))  # fmt: skip
    db.session.commit()
    page = admin_client.get("/integrations/notifications/settings")
    assert page.status_code == 200  # staff can enter the token again here
    assert "old-token" not in page.text
