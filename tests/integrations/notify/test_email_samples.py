"""Every email sample copied from the reference is used by exactly one group of tests."""

from tests.integrations.notify.email_samples import GROUPS, email_sample_names, sample_bytes


def test_every_email_sample_is_in_exactly_one_group():
    grouped = [name for group in GROUPS for name in group]
    assert sorted(grouped) == email_sample_names()
    assert len(grouped) == len(set(grouped))


def test_the_signed_sendgrid_body_kept_its_crlf():
    # The test vector signs these exact bytes (notify.md §5.4); a checkout that rewrote line
    # endings would break it.
    assert sample_bytes("sendgrid_event_webhook_signed.json").endswith(b"}]\r\n")
