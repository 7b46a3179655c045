"""Every body the sandbox sends, in Daraja's exact shapes and key order (the samples in
shared/reference/mpesa/samples/). Money goes out as Decimal so JSON keeps `1.00`."""

from decimal import Decimal

from sandbox.daraja.clock import compact
from sandbox.daraja.state import Accounts, Transaction

QUEUE_TIMEOUT_REFERENCE = "https://internalsandbox.safaricom.co.ke/mpesa/{}/v1/submit"
ACCEPTED = "Accept the service request successfully."


def money(value: Decimal | int) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


def _reference(kind: str) -> dict:
    return {
        "ReferenceItem": {"Key": "QueueTimeoutURL", "Value": QUEUE_TIMEOUT_REFERENCE.format(kind)}
    }


# --- synchronous answers ----------------------------------------------------------------------
def oauth(token: str, lifetime: int, as_type: str) -> dict:
    return {"access_token": token, "expires_in": str(lifetime) if as_type == "string" else lifetime}


def stk_accepted(txn: Transaction) -> dict:
    return {
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": txn.checkout_request_id,
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing",
    }


def stk_query_result(txn: Transaction) -> dict:
    return {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successfully",
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": txn.checkout_request_id,
        "ResultCode": str(txn.result_code),
        "ResultDesc": txn.result_desc,
    }


def b2c_accepted(txn: Transaction) -> dict:
    return {
        "ConversationID": txn.conversation_id,
        "OriginatorConversationID": txn.originator_conversation_id,
        "ResponseCode": "0",
        "ResponseDescription": ACCEPTED,
    }


def query_accepted(txn: Transaction) -> dict:
    """Transaction Status and Account Balance (whose sample has no final full stop)."""
    return {
        "OriginatorConversationID": txn.originator_conversation_id,
        "ConversationID": txn.conversation_id,
        "ResponseCode": "0",
        "ResponseDescription": ACCEPTED if txn.kind == "status_query" else ACCEPTED[:-1],
    }


def c2b_accepted(originator_id: str, description: str) -> dict:
    return {
        "OriginatorCoversationID": originator_id,  # sic, as Daraja spells it
        "ResponseCode": "0",
        "ResponseDescription": description,
    }


# --- callbacks --------------------------------------------------------------------------------
def stk_callback(txn: Transaction, balance_item: bool = False) -> dict:
    callback = {
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": txn.checkout_request_id,
        "ResultCode": txn.result_code,
        "ResultDesc": txn.result_desc,
    }
    if txn.result_code == 0:
        items = [
            {"Name": "Amount", "Value": money(txn.amount)},
            {"Name": "MpesaReceiptNumber", "Value": txn.receipt},
        ]
        if balance_item:  # real callbacks often carry a Balance item without a Value
            items.append({"Name": "Balance"})
        items += [
            {"Name": "TransactionDate", "Value": int(compact(txn.completed_at))},
            {"Name": "PhoneNumber", "Value": int(txn.phone)},
        ]
        callback["CallbackMetadata"] = {"Item": items}
    return {"Body": {"stkCallback": callback}}


def b2c_result(txn: Transaction, accounts: Accounts) -> dict:
    result = {
        "ResultType": 0,
        "ResultCode": txn.result_code,
        "ResultDesc": txn.result_desc,
        "OriginatorConversationID": txn.originator_conversation_id,
        "ConversationID": txn.conversation_id,
        "TransactionID": txn.receipt,
    }
    if txn.result_code == 0:
        parameters = [
            ("TransactionAmount", txn.amount),
            ("TransactionReceipt", txn.receipt),
            ("ReceiverPartyPublicName", f"{txn.phone} - {txn.name}"),
            ("TransactionCompletedDateTime", txn.completed_at.strftime("%d.%m.%Y %H:%M:%S")),
            ("B2CUtilityAccountAvailableFunds", money(accounts.utility)),
            ("B2CWorkingAccountAvailableFunds", money(accounts.working)),
            ("B2CRecipientIsRegisteredCustomer", "Y"),
            ("B2CChargesPaidAccountAvailableFunds", money(accounts.charges_paid)),
        ]
        result["ResultParameters"] = {
            "ResultParameter": [{"Key": key, "Value": value} for key, value in parameters]
        }
    result["ReferenceData"] = _reference("b2cresults")
    return {"Result": result}


def b2c_timeout(txn: Transaction) -> dict:
    """The queue time-out notice (shape of b2c_timeout.json, an SDK example: Safaricom
    publishes none)."""
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": txn.originator_conversation_id,
            "ConversationID": txn.conversation_id,
        }
    }


def _occasion(query: Transaction) -> dict:
    item = {"Key": "Occasion"}
    if query.occasion:
        item["Value"] = query.occasion
    return {"ReferenceItem": item}


def query_failure(query: Transaction, reference: dict) -> dict:
    """A query's result when it failed (wrong initiator, unknown transaction...)."""
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": query.result_code,
            "ResultDesc": query.result_desc,
            "OriginatorConversationID": query.originator_conversation_id,
            "ConversationID": query.conversation_id,
            "TransactionID": query.receipt,
            "ReferenceData": reference,
        }
    }


def status_result(query: Transaction, target: Transaction, organization: str) -> dict:
    """The Transaction Status result for a transaction found (transaction_status_result.json)."""
    org_party = f"{target.shortcode} - {organization}"
    customer = f"{target.phone} - {target.name}"
    status = {"completed": "Completed", "failed": "Failed"}.get(target.status, "Pending")
    finalised = compact(target.completed_at) if target.completed_at else ""
    if target.kind == "b2c":
        parties = [("DebitPartyName", org_party), ("DebitPartyName", customer)]
        account_type = "Utility Account"
        charges = f"Fee For B2C Payment|KES|{money(target.charge)}"
        reason = "Business Payment to Customer via API"
        originator = target.originator_conversation_id
    else:
        parties = [("DebitPartyName", customer), ("CreditPartyName", org_party)]
        account_type = "Customer Account"
        charges = ""
        reason = "Pay Bill Online" if target.kind == "stk" else "Pay Bill"
        originator = target.merchant_request_id
    parameters = [{"Key": key, "Value": value} for key, value in parties]
    parameters += [
        {"Key": "OriginatorConversationID", "Value": originator},
        {"Key": "InitiatedTime", "Value": compact(target.created_at)},
        {"Key": "DebitAccountType", "Value": account_type},
        {"Key": "DebitPartyCharges", "Value": charges},
        {"Key": "TransactionReason"},
        {"Key": "ReasonType", "Value": reason},
        {"Key": "TransactionStatus", "Value": status},
        {"Key": "FinalisedTime", "Value": finalised},
        {"Key": "Amount", "Value": str(target.amount)},
        {"Key": "ConversationID", "Value": target.conversation_id},
        {"Key": "ReceiptNo", "Value": target.receipt},
    ]
    return {
        "Result": {
            "ConversationID": query.conversation_id,
            "OriginatorConversationID": query.originator_conversation_id,
            "ReferenceData": _occasion(query),
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "ResultParameters": {"ResultParameter": parameters},
            "ResultType": 0,
            "TransactionID": query.receipt,
        }
    }


def balance_string(accounts: Accounts) -> str:
    """`Working Account|KES|current|available|reserved|uncleared&...` in Daraja's account order."""
    groups = (
        ("Working Account", accounts.working),
        ("Float Account", accounts.float),
        ("Utility Account", accounts.utility),
        ("Charges Paid Account", accounts.charges_paid),
        ("Organization Settlement Account", accounts.settlement),
    )
    return "&".join(f"{name}|KES|{money(value)}|{money(value)}|0.00|0.00" for name, value in groups)


def balance_result(query: Transaction, accounts: Accounts) -> dict:
    """The Account Balance result (account_balance_result.json: codes as strings)."""
    return {
        "Result": {
            "ResultType": "0",
            "ResultCode": "0",
            "ResultDesc": "The service request is processed successfully",
            "OriginatorConversationID": query.originator_conversation_id,
            "ConversationID": query.conversation_id,
            "TransactionID": query.receipt,
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "AccountBalance", "Value": balance_string(accounts)},
                    {"Key": "BOCompletedTime", "Value": compact(query.completed_at)},
                ]
            },
            "ReferenceData": _reference("abresults"),
        }
    }


def balance_failure(query: Transaction) -> dict:
    return query_failure(query, _reference("abresults"))


def status_failure(query: Transaction) -> dict:
    return query_failure(query, _occasion(query))


def c2b_notification(txn: Transaction, msisdn: str, org_balance: str) -> dict:
    """A C2B validation (org_balance "") or confirmation request (c2b_confirmation.json)."""
    first, _, rest = txn.name.partition(" ")
    middle, _, last = rest.rpartition(" ") if " " in rest else ("", "", rest)
    return {
        "TransactionType": "Pay Bill" if txn.command == "CustomerPayBillOnline" else "Buy Goods",
        "TransID": txn.receipt,
        "TransTime": compact(txn.created_at),
        "TransAmount": str(money(txn.amount)),
        "BusinessShortCode": txn.shortcode,
        "BillRefNumber": txn.account_reference,
        "InvoiceNumber": "",
        "OrgAccountBalance": org_balance,
        "ThirdPartyTransID": txn.third_party_trans_id,
        "MSISDN": msisdn,
        "FirstName": first,
        "MiddleName": middle,
        "LastName": last,
    }
