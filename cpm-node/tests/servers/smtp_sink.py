#!/usr/bin/env python3
"""A real SMTP server for the IWF tests: aiosmtpd on 127.0.0.1:PORT.

Each message it takes is parsed with Python's `email` package and one line
is appended to OUT:

    rcpt=<addr> from=<addr> len=<body bytes> crc32=<hex> type=<content type> msgid=<Message-ID> defects=<n> year=<Date's year>

A recipient whose local part is `refuse` is answered 550 at RCPT, `busy`
452, so that the IWF's mapping of refusals can be tested.
"""
import asyncio
import email
import email.policy
import email.utils
import sys
import zlib

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local == "refuse":
            return "550 5.7.1 this mailbox refuses mail"
        if local == "busy":
            return "452 4.2.2 mailbox full, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = message.get_payload(decode=True) or b""
        date = email.utils.parsedate_to_datetime(message["Date"]) if message["Date"] else None
        line = "rcpt={} from={} len={} crc32={:08x} type={} msgid={} defects={} year={}\n".format(
            ",".join(envelope.rcpt_tos),
            envelope.mail_from,
            len(body),
            zlib.crc32(body),
            message.get_content_type(),
            message.get("Message-ID", "-"),
            len(message.defects),
            date.year if date else "-",
        )
        with open(self.out, "a") as out:
            out.write(line)
        return "250 2.0.0 stored"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port, data_size_limit=128 * 1024 * 1024)
    controller.start()
    print("listening", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
