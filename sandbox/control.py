"""The provider-independent part of the JSON control API: deliveries, flush and reset."""

from flask import Blueprint, current_app, jsonify, request

control = Blueprint("sandbox_control", __name__, url_prefix="/sandbox/api")


@control.get("/")
def endpoints():
    """What the control API offers (a map for people poking at it)."""
    rules = sorted(
        f"{' '.join(sorted(r.methods - {'HEAD', 'OPTIONS'}))} {r.rule}"
        for r in current_app.url_map.iter_rules()
        if r.rule.startswith("/sandbox/api")
    )
    return jsonify({"endpoints": rules})


@control.get("/deliveries")
def deliveries():
    """Every callback sent (or dropped), oldest first; `?provider=daraja&kind=stk_callback`."""
    kind = request.args.get("kind")
    items = current_app.extensions["sandbox_deliveries"].all(request.args.get("provider"))
    return jsonify([d.to_dict() for d in items if not kind or d.kind == kind])


@control.post("/flush")
def flush():
    """Runs every pending job now (callbacks held or not yet due) and returns the deliveries
    made, with the receivers' answers. Prompts waiting on the virtual phone stay waiting."""
    delivered = current_app.extensions["sandbox_scheduler"].flush()
    return jsonify({"delivered": [d.to_dict() for d in delivered]})


@control.post("/reset")
def reset():
    """Forgets all state of every provider: transactions, tokens, deliveries, pending jobs,
    balances, registrations; the mode returns to the configured one."""
    current_app.extensions["sandbox_scheduler"].clear()
    current_app.extensions["sandbox_deliveries"].clear()
    for provider in current_app.extensions["sandbox_providers"]:
        provider.reset()
    return jsonify({"reset": True})
