#!/usr/bin/env python3
"""A local SMTP server for the sign-up example (python3-aiosmtpd): prints each e-mail as it
arrives (From, To, Subject, the text body) and appends its Message-ID to a file, so the demo
can count them. Usage: mailbox.py PORT [MESSAGE_IDS_FILE]. Stops on SIGTERM or Ctrl-C."""
import email
import email.policy
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Mailbox:
    def __init__(self, ids_path):
        self.ids_path = ids_path

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        text = body.get_content().replace("\r\n", "\n").strip() if body else ""
        print(f"\n  [mailbox] e-mail to {msg['To']}\n  [mailbox]   From:    {msg['From']}\n"
              f"  [mailbox]   Subject: {msg['Subject']}\n"
              f"  [mailbox]   Id:      {msg['Message-ID']}", flush=True)
        for line in text.splitlines():
            print(f"  [mailbox]   | {line}", flush=True)
        if self.ids_path:
            with open(self.ids_path, "a") as f:
                f.write(f"{msg['Message-ID']}\n")
        return "250 Message accepted for delivery"


def main():
    port = int(sys.argv[1])
    ids = sys.argv[2] if len(sys.argv) > 2 else None
    controller = Controller(Mailbox(ids), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"  [mailbox] SMTP server listening on 127.0.0.1:{port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
