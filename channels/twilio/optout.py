"""SMS opt-out and opt-in keywords as Twilio handles them by default on long codes (and as Advanced Opt-Out
starts with): Twilio blocks further messages to a number that sent STOP (error 21610) and forwards the
message to the webhook, so the hub marks the customer unsubscribed on that channel at the same moment.

Only a whole message counts: "STOP" blocks, "STOP PLEASE" does not; case is ignored.
"""

from __future__ import annotations

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})


def consent_of(body: str, opt_out_type: str | None = None, *, keywords: bool = True) -> bool | None:
    """False for an opt-out, True for an opt-in, None for any other message.

    `opt_out_type` is Twilio's own verdict (the `OptOutType` parameter, sent when Advanced Opt-Out is on,
    custom keywords included) and wins; otherwise the default keywords decide when `keywords` is true."""
    if opt_out_type == "STOP":
        return False
    if opt_out_type == "START":
        return True
    if opt_out_type or not keywords:
        return None
    word = body.strip().upper()
    if word in OPT_OUT:
        return False
    if word in OPT_IN:
        return True
    return None
