#!/usr/bin/env python3
"""Prints the messages of a Maildir (written by aiosmtpd's Mailbox handler) as JSON:
[{"message_id", "to", "from", "subject", "text", "html"}], decoded with the standard
library's e-mail parser."""

import json
import mailbox
import sys
from email import policy
from email.parser import BytesParser


def main(path):
    out = []
    for message in mailbox.Maildir(path, factory=None, create=False):
        parsed = BytesParser(policy=policy.default).parsebytes(bytes(message))
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        out.append({
            "message_id": parsed["Message-ID"],
            "to": parsed["To"],
            "from": parsed["From"],
            "subject": parsed["Subject"],
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
