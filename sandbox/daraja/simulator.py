"""The Daraja simulator: accepts requests already checked by the routes, decides their outcomes
(outcomes.py), moves the money (ledger.py) and sends the callbacks (payloads.py) through the
shared scheduler, after the configured delay or on flush()."""

import secrets
import string
import time
from decimal import Decimal

from sandbox.daraja import ids, ledger, payloads, security
from sandbox.daraja.clock import now
from sandbox.daraja.errors import (
    BEING_PROCESSED,
    DUPLICATE_ORIGINATOR_ID,
    INVALID_ACCESS_TOKEN,
    INVALID_AUTH_HEADER,
    SUBSCRIBER_LOCKED,
    error,
    invalid,
)
from sandbox.daraja.outcomes import (
    B2C_OUTCOMES,
    B2C_RESULTS,
    PHONE_ACTIONS,
    STK_OUTCOMES,
    STK_RESULTS,
    plan_b2c,
    plan_stk,
)
from sandbox.daraja.state import C2BRegistration, DarajaState, Token, Transaction
from sandbox.delivery import Delivery, DeliveryLog, post_json
from sandbox.scheduler import Scheduler
from sandbox.settings import parse_delay

PROVIDER = "daraja"
_TOKEN_CHARS = string.ascii_letters + string.digits
_BOOLEAN_MODES = (
    "drop_callbacks",
    "duplicate_callbacks",
    "stk_balance_item",
    "stk_c2b_confirmation",
)
PAY_IN_REASONS = {
    "CustomerPayBillOnline": ("Pay Bill Online", "Pay Bill Online"),
    "CustomerBuyGoodsOnline": ("Customer Buy Goods Online", "Buy Goods Online"),
}
C2B_REASONS = {
    "CustomerPayBillOnline": ("Pay Bill", "Pay Bill"),
    "CustomerBuyGoodsOnline": ("Customer Buy Goods", "Buy Goods"),
}


class DarajaSimulator:
    def __init__(self, config: dict, scheduler: Scheduler, deliveries: DeliveryLog):
        self.config = config
        self.scheduler = scheduler
        self.deliveries = deliveries
        self.state = DarajaState(config)
        self.keys = security.load_or_create(
            config["SANDBOX_DARAJA_KEY_PATH"], config["SANDBOX_DARAJA_CERT_PATH"]
        )

    @property
    def shortcodes(self) -> tuple[str, ...]:
        return self.config["SANDBOX_DARAJA_SHORTCODES"]

    def mode(self) -> dict:
        with self.state.lock:
            return dict(self.state.mode)

    # --- control ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forgets all Daraja state; the caller clears the shared scheduler and delivery log."""
        self.state.reset()

    def set_mode(self, changes: dict) -> dict:
        """Validates and applies mode changes all at once (ValueError names a bad one)."""
        current = self.mode()
        updated = dict(current)
        for key, value in changes.items():
            if key not in current:
                raise ValueError(f"unknown mode setting {key!r}")
            if key == "mode":
                if value not in ("auto", "manual"):
                    raise ValueError("mode must be auto or manual")
            elif key == "delay":
                value = parse_delay(value)
            elif key in _BOOLEAN_MODES:
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
            elif key == "stk_outcome":
                if value is not None and value not in STK_OUTCOMES:
                    raise ValueError(f"stk_outcome must be one of {', '.join(STK_OUTCOMES)}")
            elif key == "b2c_outcome":
                if value is not None and value not in B2C_OUTCOMES:
                    raise ValueError(f"b2c_outcome must be one of {', '.join(B2C_OUTCOMES)}")
            elif key == "c2b_msisdn" and value not in ("masked", "hashed", "plain"):
                raise ValueError("c2b_msisdn must be masked, hashed or plain")
            updated[key] = value
        with self.state.lock:
            self.state.mode = updated
        return dict(updated)

    def register_customer(self, phone: str, name: str) -> None:
        with self.state.lock:
            self.state.customers[phone] = name.strip().upper()

    # --- OAuth ------------------------------------------------------------------------------
    def issue_token(self, consumer_key: str) -> Token:
        """A new token for the app; the app's previous token stops working (as on Daraja)."""
        value = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(28))
        issued = time.time()
        token = Token(
            value, consumer_key, issued, issued + self.config["SANDBOX_DARAJA_TOKEN_LIFETIME"]
        )
        with self.state.lock:
            previous = self.state.current_token.get(consumer_key)
            if previous in self.state.tokens:
                self.state.tokens[previous].revoked = True
            self.state.tokens[value] = token
            self.state.current_token[consumer_key] = value
            self.state.tokens_issued[consumer_key] += 1
        return token

    def check_token(self, authorization: str | None) -> None:
        """Raises Daraja's error unless the header carries the app's current, unexpired token."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise error(INVALID_AUTH_HEADER)
        with self.state.lock:
            token = self.state.tokens.get(value.strip())
            if token is None or token.revoked or token.expires_at <= time.time():
                raise error(INVALID_ACCESS_TOKEN)

    def expire_tokens(self) -> int:
        """Makes every issued token invalid (to test a client's refresh); returns how many."""
        with self.state.lock:
            for token in self.state.tokens.values():
                token.revoked = True
            return len(self.state.tokens)

    def token_counts(self) -> dict:
        with self.state.lock:
            by_key = dict(self.state.tokens_issued)
            active = sum(
                1
                for t in self.state.tokens.values()
                if not t.revoked and t.expires_at > time.time()
            )
        return {"issued": sum(by_key.values()), "by_consumer_key": by_key, "active": active}

    # --- callbacks --------------------------------------------------------------------------
    def _deliver(self, kind: str, url: str, body: dict, reference: str, lost=False) -> list:
        """Posts a callback, or records it as dropped; twice when duplicates are on."""
        mode = self.mode()
        if lost or mode["drop_callbacks"]:
            return [
                self.deliveries.new(
                    provider=PROVIDER,
                    kind=kind,
                    url=url,
                    body=body,
                    reference=reference,
                    dropped=True,
                )
            ]
        copies = 2 if mode["duplicate_callbacks"] else 1
        sent = []
        for copy in range(1, copies + 1):
            delivery = self.deliveries.new(
                provider=PROVIDER, kind=kind, url=url, body=body, reference=reference, copy=copy
            )
            sent.append(post_json(delivery, self.config["SANDBOX_CALLBACK_TIMEOUT"]))
        return sent

    def _later(self, job, delay: float | None = None) -> None:
        self.scheduler.schedule(job, self.mode()["delay"] if delay is None else delay)

    def _new_receipt(self, at) -> str:
        with self.state.lock:
            while True:
                receipt = ids.receipt(at)
                if receipt not in self.state.by_receipt:
                    return receipt

    # --- STK Push ---------------------------------------------------------------------------
    def stk_push(self, request: dict) -> Transaction:
        """Opens a prompt on the customer's phone; refused while one is open on that phone."""
        at = now()
        mode = self.mode()
        fact = None
        if request["TransactionType"] == "CustomerPayBillOnline" and (
            request["PartyB"] != request["BusinessShortCode"]
        ):
            fact = "not_permitted"
        plan = plan_stk(
            request["PhoneNumber"],
            forced=mode["stk_outcome"],
            manual=mode["mode"] == "manual",
            fact=fact,
        )
        with self.state.lock:
            if self.state.pending_prompt_for(request["PhoneNumber"]):
                raise error(SUBSCRIBER_LOCKED)
            checkout_id = ids.checkout_request_id(request["PhoneNumber"], at)
            while checkout_id in self.state.by_checkout_id:
                checkout_id = checkout_id[:-1] + secrets.choice(string.digits)
            txn = self.state.add(
                Transaction(
                    kind="stk",
                    id=checkout_id,
                    shortcode=request["BusinessShortCode"],
                    created_at=at,
                    phone=request["PhoneNumber"],
                    amount=request["Amount"],
                    name=ledger.customer_name(self.state, request["PhoneNumber"]),
                    merchant_request_id=ids.merchant_request_id(),
                    checkout_request_id=checkout_id,
                    command=request["TransactionType"],
                    account_reference=request["AccountReference"],
                    description=request["TransactionDesc"],
                    callback_url=request["CallBackURL"],
                    plan=plan,
                    extra={"party_a": request["PartyA"], "party_b": request["PartyB"]},
                )
            )
        if plan.result is not None:
            self._later(lambda: self._finish_stk(txn.id, plan.result))
        return txn

    def stk_query(self, checkout_id: str) -> Transaction:
        txn = self.state.find(checkout_id)
        if txn is None or txn.kind != "stk":
            raise invalid("CheckoutRequestID")
        if not txn.finished:
            raise error(BEING_PROCESSED, request_id=checkout_id)
        return txn

    def press(self, checkout_id: str, action: str) -> Transaction:
        """A button on the virtual phone: settles a waiting prompt now, callback after the delay."""
        if action not in PHONE_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(PHONE_ACTIONS)}")
        with self.state.lock:
            txn = self.state.find(checkout_id)
            if txn is None or txn.kind != "stk":
                raise LookupError(f"no STK prompt {checkout_id}")
            if txn.finished:
                raise ValueError(f"prompt {checkout_id} is already {txn.status}")
            self._complete_stk(txn, PHONE_ACTIONS[action])
        self._later(lambda: self._send_stk(txn))
        return txn

    def _complete_stk(self, txn: Transaction, result: str) -> None:
        at = now()
        code, desc = STK_RESULTS[result]
        with self.state.lock:
            txn.result_code, txn.result_desc, txn.completed_at = code, desc, at
            txn.status = "completed" if code == 0 else "failed"
            if code == 0:
                self.state.set_receipt(txn, self._new_receipt(at))
                reason, label = PAY_IN_REASONS[txn.command]
                ledger.pay_in(self.state, txn, at, reason, label)

    def _finish_stk(self, checkout_id: str, result: str) -> list:
        with self.state.lock:
            txn = self.state.find(checkout_id)
            if txn is None or txn.finished:  # settled meanwhile (phone page) or reset
                return []
            self._complete_stk(txn, result)
        return self._send_stk(txn)

    def _send_stk(self, txn: Transaction) -> list:
        mode = self.mode()
        body = payloads.stk_callback(txn, mode["stk_balance_item"])
        lost = txn.plan is not None and txn.plan.callback == "lost"
        sent = self._deliver("stk_callback", txn.callback_url, body, txn.id, lost=lost)
        if txn.result_code == 0 and mode["stk_c2b_confirmation"]:
            registration = self.state.c2b_urls.get(txn.shortcode)
            if registration:  # an STK payment to a paybill also arrives as a C2B confirmation
                body = payloads.c2b_notification(
                    txn,
                    ledger.c2b_msisdn(txn.phone, mode["c2b_msisdn"]),
                    str(payloads.money(txn.balance_after)),
                )
                sent += self._deliver(
                    "c2b_confirmation", registration.confirmation_url, body, txn.id
                )
        return sent

    # --- B2C --------------------------------------------------------------------------------
    def b2c(self, request: dict, password: str | None, version: str) -> Transaction:
        """Accepts a payment; the result (or a queue time-out) follows as a callback."""
        at = now()
        initiator_ok = (
            request["InitiatorName"] == self.config["SANDBOX_DARAJA_INITIATOR_NAME"]
            and password == self.config["SANDBOX_DARAJA_INITIATOR_PASSWORD"]
        )
        plan = plan_b2c(
            request["PartyB"],
            forced=self.mode()["b2c_outcome"],
            fact=None if initiator_ok else "initiator_invalid",
        )
        with self.state.lock:
            originator_id = request.get("OriginatorConversationID") or ids.short_originator_id()
            if originator_id in self.state.by_originator_id:
                raise error(DUPLICATE_ORIGINATOR_ID)
            conversation_id = ids.conversation_id(at)
            txn = self.state.add(
                Transaction(
                    kind="b2c",
                    id=conversation_id,
                    shortcode=request["PartyA"],
                    created_at=at,
                    phone=request["PartyB"],
                    amount=request["Amount"],
                    name=ledger.customer_name(self.state, request["PartyB"]),
                    conversation_id=conversation_id,
                    originator_conversation_id=originator_id,
                    command=request["CommandID"],
                    remarks=request["Remarks"],
                    occasion=request["Occassion"],
                    result_url=request["ResultURL"],
                    timeout_url=request["QueueTimeOutURL"],
                    api_version=version,
                    initiator_ok=initiator_ok,
                    plan=plan,
                )
            )
        self._later(lambda: self._finish_b2c(txn.id))
        return txn

    def _finish_b2c(self, conversation_id: str) -> list:
        at = now()
        with self.state.lock:
            txn = self.state.find(conversation_id)
            if txn is None or txn.finished:
                return []
            result = txn.plan.result
            accounts = self.state.accounts[txn.shortcode]
            cost = Decimal(txn.amount) + ledger.charge(txn.amount, ledger.B2C_TARIFF)
            if result == "success" and accounts.utility < cost:
                result = "insufficient_funds"
            code, desc = B2C_RESULTS[result]
            txn.result_code, txn.result_desc, txn.completed_at = code, desc, at
            txn.status = "completed" if code == 0 else "failed"
            self.state.set_receipt(txn, self._new_receipt(at))  # failures carry one too
            if code == 0:
                ledger.pay_out(self.state, txn, at)
            elif result != "initiator_invalid":  # refused before reaching the ledger
                ledger.failed(
                    self.state, txn, at, "Business Payment to Customer", f"{desc} ({txn.phone})"
                )
            body = payloads.b2c_result(txn, accounts)
        if txn.plan.callback == "timeout":
            timeout = payloads.b2c_timeout(txn)
            return self._deliver("b2c_timeout", txn.timeout_url, timeout, txn.id)
        lost = txn.plan.callback == "lost"
        return self._deliver("b2c_result", txn.result_url, body, txn.id, lost=lost)

    # --- Transaction Status and Account Balance ---------------------------------------------
    def _query(self, kind: str, request: dict, password: str | None) -> Transaction:
        at = now()
        initiator_ok = (
            request["Initiator"] == self.config["SANDBOX_DARAJA_INITIATOR_NAME"]
            and password == self.config["SANDBOX_DARAJA_INITIATOR_PASSWORD"]
        )
        conversation_id = ids.conversation_id(at)
        return self.state.add(
            Transaction(
                kind=kind,
                id=conversation_id,
                shortcode=request["PartyA"],
                created_at=at,
                conversation_id=conversation_id,
                originator_conversation_id=ids.short_originator_id(),
                command=request["CommandID"],
                remarks=request.get("Remarks", ""),
                occasion=request.get("Occasion", ""),
                result_url=request["ResultURL"],
                timeout_url=request["QueueTimeOutURL"],
                initiator_ok=initiator_ok,
                query_transaction_id=request.get("TransactionID", ""),
                query_conversation_id=request.get("OriginalConversationID", ""),
            )
        )

    def transaction_status(self, request: dict, password: str | None) -> Transaction:
        """Accepts a status query; the result reports the transaction's true outcome."""
        query = self._query("status_query", request, password)
        self._later(lambda: self._finish_status(query.id))
        return query

    def _find_target(self, query: Transaction) -> Transaction | None:
        with self.state.lock:
            if query.query_transaction_id:
                return self.state.by_receipt.get(query.query_transaction_id)
            target = self.state.find(query.query_conversation_id)
            if target is None:  # an STK push can be found by its MerchantRequestID too
                target = next(
                    (
                        t
                        for t in self.state.transactions.values()
                        if t.merchant_request_id
                        and t.merchant_request_id == query.query_conversation_id
                    ),
                    None,
                )
            return target if target and target.kind in ("stk", "b2c", "c2b") else None

    def _settle_query(self, query: Transaction, code, desc: str) -> None:
        at = now()
        query.result_code, query.result_desc, query.completed_at = code, desc, at
        query.status = "completed" if code == 0 else "failed"
        query.receipt = ids.query_transaction_id(at)

    def _finish_status(self, query_id: str) -> list:
        with self.state.lock:
            query = self.state.find(query_id)
            if query is None or query.finished:
                return []
            target = self._find_target(query)
            if not query.initiator_ok:
                self._settle_query(query, 2001, "The initiator information is invalid.")
            elif query.shortcode not in self.shortcodes:
                self._settle_query(query, "SFC_IC0003", "Receiver party is invalid")
            elif target is None:
                # Safaricom documents no code for an unknown transaction; the sandbox uses the
                # reversal API's "invalid transaction" code.
                self._settle_query(query, "R000002", "The OriginalTransactionID is invalid.")
            else:
                self._settle_query(query, 0, "The service request is processed successfully.")
                query.target_id = target.id
            if query.result_code == 0:
                body = payloads.status_result(
                    query, target, self.config["SANDBOX_DARAJA_ORGANIZATION_NAME"]
                )
            else:
                body = payloads.status_failure(query)
        return self._deliver("status_result", query.result_url, body, query.id)

    def account_balance(self, request: dict, password: str | None) -> Transaction:
        query = self._query("balance_query", request, password)
        self._later(lambda: self._finish_balance(query.id))
        return query

    def _finish_balance(self, query_id: str) -> list:
        with self.state.lock:
            query = self.state.find(query_id)
            if query is None or query.finished:
                return []
            if not query.initiator_ok:
                self._settle_query(query, 2001, "The initiator information is invalid.")
                body = payloads.balance_failure(query)
            elif query.shortcode not in self.state.accounts:
                self._settle_query(query, "SFC_IC0003", "Receiver party is invalid")
                body = payloads.balance_failure(query)
            else:
                self._settle_query(query, 0, "The service request is processed successfully")
                body = payloads.balance_result(query, self.state.accounts[query.shortcode])
        return self._deliver("balance_result", query.result_url, body, query.id)

    # --- C2B --------------------------------------------------------------------------------
    def register_c2b(self, request: dict, version: str) -> None:
        """Stores (or replaces: the sandbox allows re-registration) a shortcode's C2B URLs."""
        registration = C2BRegistration(
            shortcode=request["ShortCode"],
            response_type=request["ResponseType"],
            confirmation_url=request["ConfirmationURL"],
            validation_url=request.get("ValidationURL", ""),
            version=version,
        )
        with self.state.lock:
            self.state.c2b_urls[registration.shortcode] = registration

    def start_c2b(
        self,
        shortcode: str,
        phone: str,
        amount: int,
        account: str,
        command: str = "CustomerPayBillOnline",
        name: str | None = None,
    ) -> Transaction:
        """A customer pays the paybill from their phone; validation and confirmation follow."""
        at = now()
        if name:
            self.register_customer(phone, name)
        with self.state.lock:
            receipt = self._new_receipt(at)
            txn = self.state.add(
                Transaction(
                    kind="c2b",
                    id=receipt,
                    shortcode=shortcode,
                    created_at=at,
                    phone=phone,
                    amount=amount,
                    name=ledger.customer_name(self.state, phone),
                    receipt=receipt,
                    command=command,
                    account_reference=account,
                    originator_conversation_id=ids.request_id(),
                )
            )
        self._later(lambda: self._process_c2b(txn.id))
        return txn

    def _validate_c2b(self, txn: Transaction, registration: C2BRegistration) -> tuple[bool, list]:
        """Asks the ValidationURL; unreachable, late or unreadable -> the registered default."""
        mode = self.mode()
        body = payloads.c2b_notification(txn, ledger.c2b_msisdn(txn.phone, mode["c2b_msisdn"]), "")
        delivery = self.deliveries.new(
            provider=PROVIDER,
            kind="c2b_validation",
            url=registration.validation_url,
            body=body,
            reference=txn.id,
        )
        post_json(delivery, self.config["SANDBOX_DARAJA_VALIDATION_TIMEOUT"])
        answer = delivery.response_json() if delivery.ok else None
        if isinstance(answer, dict) and "ResultCode" in answer:
            accepted = str(answer["ResultCode"]) == "0"
            txn.extra["validation"] = {"ResultCode": str(answer["ResultCode"])}
            if accepted and answer.get("ThirdPartyTransID"):
                txn.third_party_trans_id = str(answer["ThirdPartyTransID"])
            if not accepted:
                txn.result_code = str(answer["ResultCode"])
                txn.result_desc = str(answer.get("ResultDesc", "Rejected"))
            return accepted, [delivery]
        txn.extra["validation"] = {"default": registration.response_type}
        accepted = registration.response_type == "Completed"
        if not accepted:
            txn.result_code, txn.result_desc = "C2B00016", "Cancelled by default action"
        return accepted, [delivery]

    def _process_c2b(self, receipt: str) -> list:
        txn = self.state.find(receipt)
        if txn is None or txn.finished:
            return []
        registration = self.state.c2b_urls.get(txn.shortcode)
        sent: list[Delivery] = []
        accepted = True
        if registration and registration.validation_url:
            accepted, sent = self._validate_c2b(txn, registration)
        at = now()
        reason, label = C2B_REASONS[txn.command]
        with self.state.lock:
            txn.completed_at = at
            if not accepted:
                txn.status = "failed"
                ledger.failed(self.state, txn, at, reason, f"{label} from {txn.phone} rejected")
                return sent
            txn.status, txn.result_code = "completed", 0
            txn.result_desc = "The service request is processed successfully."
            ledger.pay_in(self.state, txn, at, reason, label)
            mode = self.mode()
            body = payloads.c2b_notification(
                txn,
                ledger.c2b_msisdn(txn.phone, mode["c2b_msisdn"]),
                str(payloads.money(txn.balance_after)),
            )
        if registration is None:  # money arrives, nobody is told (a case for reconciliation)
            txn.extra["confirmation"] = "no URLs registered"
            return sent
        return sent + self._deliver("c2b_confirmation", registration.confirmation_url, body, txn.id)
