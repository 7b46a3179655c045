"""`flask notify send` and `notify show` against the provider sandbox."""

import json


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=["notify", *args])


def test_send_prints_the_ids_and_show_prints_every_attempt(app, member, notify_live, run_jobs):
    run_jobs()  # the member's welcome message first
    notify_live.set_failure("africastalking", "500")
    sent = invoke(app, "send", "--member-id", str(member.id), "--channel", "sms",
                  "--message", "Meeting on Saturday", "--priority", "high")  # fmt: skip
    assert sent.exit_code == 0, sent.output
    (notification_id,) = json.loads(sent.stdout)["notification_ids"]
    run_jobs()
    shown = json.loads(invoke(app, "show", str(notification_id)).stdout)
    assert (shown["status"], shown["provider"]) == ("sent", "twilio")
    assert [(a["provider"], a["outcome"]) for a in shown["attempts"]] == [
        ("africastalking", "transient"),
        ("twilio", "accepted"),
    ]


def test_send_refused_exits_1_and_show_unknown_is_an_error(app, member):
    refused = invoke(app, "send", "--member-id", "999999", "--channel", "sms", "--message", "Hi")
    assert refused.exit_code == 1 and "recipient_id" in json.loads(refused.stdout)["message"]
    assert invoke(app, "show", "424242").exit_code == 1
