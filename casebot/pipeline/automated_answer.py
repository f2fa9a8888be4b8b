"""Step `automated_answer`: where automated mail that answers a mail goes (bounces, DSNs, read receipts, feedback
reports, out-of-office and other auto-replies; `Origin.answer`, set by `loop_guard`).

Hit for every such mail, and it ends the chain: no priority is taken from it (a bounce quotes the client's words),
no escalation, no acknowledgement. The Message-IDs the report names (embedded original, `Original-Message-ID`,
quoted headers) and the mail's own `In-Reply-To`/`References`, best first, are looked up among what casebot
stored and sent: found, the mail is stored on that case, even a closed one, and changes nothing there; a failure
report about a mail casebot sent names that mail (`Origin.bounced`: its outbox row becomes `bounced`). Found
nowhere, it is kept without a case (`Placement.caseless`), listed by `casebot messages list --automated`: a bounce
for mail casebot never sent or an out-of-office to someone's personal mail is not a case per message. Must not
write anything or take a case from a subject reference alone (a guessed reference never reaches a case).
"""

from __future__ import annotations

from typing import ClassVar

from casebot.pipeline.base import Finding, Incoming, Stop, Verdict

MAX_LOOKUPS = 20


class AutomatedAnswer:
    name: ClassVar[str] = "automated_answer"

    def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
        origin, place, m = verdict.origin, verdict.placement, incoming.mail
        if origin.answer is None:
            return Finding(False, "not an answer")
        report = origin.report
        named = tuple(dict.fromkeys((*(report.message_ids if report else ()), *m.thread_ids)))[:MAX_LOOKUPS]
        own = next((mid for mid in named if incoming.lookup.is_own_message_id(mid)), None)
        case = incoming.lookup.case_for_message_ids(named) if named else None
        if case is None and place.case is not None:
            case = place.case  # threaded by a reference in the subject, from a participant of an open case
        what = "failure report" if report is not None and report.is_failure else origin.answer
        if own is not None and report is not None and report.is_failure:
            origin.bounced = own
        place.linked_to = None
        if case is not None:
            place.case = case
            about = f"casebot's mail <{own}>" if own else "a message of the case"
            raise Stop(Finding(True, "stored on case", f"{what} about {about}: stored on the case, which it "
                               "does not change; no acknowledgement", {"reference": case.reference,
                                                                        "answers": own or (named[0] if named else "")}))
        place.case = None
        if own is not None:
            place.caseless = f"{what} about casebot's mail <{own}>, which belongs to no case"
        elif named:
            place.caseless = f"{what} that answers nothing casebot has (names {', '.join(named[:3])})"
        else:
            place.caseless = f"{what} that names no mail it answers"
        raise Stop(Finding(True, "kept without a case", place.caseless))
