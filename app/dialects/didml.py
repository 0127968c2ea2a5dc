"""DIDforSale didML dialect: TwiML's family, with DIDforSale's names.

It names the call `callSid` (either case is accepted), and its `<Gather>` takes
`minDigits` and re-prompts by itself `tries` times: Glue asks for one try and
re-prompts itself, as on Twilio, so both behave the same.
"""

from __future__ import annotations

from app.dialects.twiml import VoiceXml

DIDML = VoiceXml(
    NAME="didml",
    call_id_fields=("callSid", "CallSid"),
    gather_attributes={"tries": "1"},
    min_digits_attribute="minDigits",
)
