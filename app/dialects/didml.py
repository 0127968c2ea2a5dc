"""DIDforSale didML dialect: TwiML's family, with DIDforSale's names.

It names the call `callSid` (either case is accepted), except in a `<Record>`'s
action request: that one carries `RecordingUrl`, `callid`, `dialednumber`,
`callerid` (the caller's number) and `callername` in place of `callSid`, `To`,
`From` and `CallerName`, and is read as a turn of the same call. Its `<Gather>`
takes `minDigits` and re-prompts by itself `tries` times: Glue asks for one try
and re-prompts itself, as on Twilio, so both behave the same.

Where didML's attribute names differ from Twilio's, DIDforSale's are written:
`<Dial callerid>`, `<Record maxlength>` (and no `playBeep`, which didML does not
have), and `<Pause>` takes no attribute at all: its text is the silence in
milliseconds.

DIDforSale writes verbs sometimes capitalised (`<Say>`, `<Gather>`) and
sometimes not (`<dial>`, `<number>`, `<pause>`, `<hangup>`), and its attribute
tables capitalise some names (`Method`, `Timeout`, `Tries`, `Action`) that its
examples write in lower case (`method`, `timeout`, `action`). Glue keeps the
capitalised verbs, as in its verb list, and the examples' lower-case names.
`<Record>`'s table says `maxlength` (as `<Number>`'s table and example do) where
its example says `maxLength`: the table's spelling is used.
"""

from __future__ import annotations

from app.dialects.twiml import VoiceXml

DIDML = VoiceXml(
    NAME="didml",
    call_id_fields=("callSid", "CallSid", "callid"),
    caller_fields=("From", "Caller", "callerid"),
    gather_attributes={"tries": "1"},
    min_digits_attribute="minDigits",
    caller_id_attribute="callerid",
    pause_length_attribute=None,
    max_length_attribute="maxlength",
    PLATFORM_FIELDS=VoiceXml.PLATFORM_FIELDS | {"callid", "callerid", "callername", "dialednumber"},
)
