"""The mail model (pure): addresses, inbound parse into `InboundMail`, visible text of HTML, outbound compose.

One module per concern: `address` (header text, addresses, Message-IDs), `inbound` (parse, dedupe key,
attachments; the only importer of mailparser), `html` (hidden text dropped), `outbound` (compose within RFC 5322
limits). Must not do I/O, read the clock or touch storage; it never raises on bad input.
"""

from casebot.mail.address import (
    MAX_ADDRESS,
    MAX_MESSAGE_ID,
    Address,
    address_domain,
    clean_text,
    decode_header_value,
    envelope_address,
    first_address,
    message_ids,
    needs_smtputf8,
    parse_addresses,
)
from casebot.mail.html import html_to_text
from casebot.mail.inbound import (
    Attachment,
    Head,
    InboundMail,
    dedupe_key,
    parse,
    parse_unparsed,
    read_head,
    sanitize_filename,
    visible_body,
)
from casebot.mail.outbound import Outgoing, compose, make_message_id

__all__ = [
    "MAX_ADDRESS", "MAX_MESSAGE_ID", "Address", "Attachment", "Head", "InboundMail", "Outgoing", "address_domain",
    "clean_text", "compose", "decode_header_value", "dedupe_key", "envelope_address", "first_address", "html_to_text",
    "make_message_id", "message_ids", "needs_smtputf8", "parse", "parse_addresses", "parse_unparsed", "read_head",
    "sanitize_filename", "visible_body",
]
