"""A real SMTP server for the alerting tests (aiosmtpd): accepts AUTH PLAIN/LOGIN without TLS
with any credentials, writes each message as one JSON line (envelope, subject, decoded body, raw data) to the file given, and prints
`READY <port>` once listening. Stops when its stdin closes."""

import email
import email.policy
import json
import socket
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, path):
        self.path = path

    async def handle_DATA(self, server, session, envelope):
        login = session.login_data
        if isinstance(login, (bytes, bytearray)):
            login = login.decode("utf-8", "replace")
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = msg.get_body(preferencelist=("html", "plain"))
        line = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "to": str(msg["to"]),
            "body": part.get_content() if part is not None else "",
            "data": envelope.content.decode("utf-8", "replace"),
            "authenticated": session.authenticated,
            "login": str(login) if login is not None else None,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")
        return "250 OK"


def accept_any(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True, auth_data=getattr(auth_data, "login", None))


def main():
    path = sys.argv[1]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    controller = Controller(
        Sink(path),
        hostname="127.0.0.1",
        port=port,
        authenticator=accept_any,
        auth_require_tls=False,
    )
    controller.start()
    print(f"READY {port}", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
