"""A mail server double for the mail health check's integration test: SMTP submission (STARTTLS,
AUTH PLAIN) and IMAPS with just the commands a client like the probe sends, on ports 587 and 993
of a loopback address, delivering into in-memory mailboxes. `deliver` stands in for Postfix and
rspamd: it decides what reaches the mailbox (signed, unsigned, or nothing).

A double at the boundary the test is not about (the real Postfix and Dovecot are the cloud tier's).
"""

import base64
import contextlib
import shlex
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

SUBMISSION_PORT = 587
IMAPS_PORT = 993

#: A client that refuses our certificate (as the probe must, for a wrong name) or hangs up.
CLIENT_GONE = (ssl.SSLError, ConnectionError)

Deliver = Callable[[bytes], bytes | None]  # the submitted message -> what lands in the mailbox (None: nothing)


@dataclass
class MailServerDouble:
    address: str
    cert_pem: str
    key_pem: str
    passwords: dict[str, str]  # address -> password
    deliver: Deliver
    mailboxes: dict[str, list[bytes]] = field(default_factory=dict)
    servers: list[socketserver.ThreadingTCPServer] = field(default_factory=list)

    def tls(self, folder: Path) -> ssl.SSLContext:
        (folder / "cert.pem").write_text(self.cert_pem)
        (folder / "key.pem").write_text(self.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        return context

    def start(self, folder: Path) -> "MailServerDouble":
        context = self.tls(folder)
        double = self

        class Submission(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(*CLIENT_GONE):
                    double.smtp_session(self.connection, context)

        class Imaps(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(*CLIENT_GONE):
                    double.imap_session(context.wrap_socket(self.connection, server_side=True))

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        for port, handler in ((SUBMISSION_PORT, Submission), (IMAPS_PORT, Imaps)):
            server = socketserver.ThreadingTCPServer((self.address, port), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    # --- SMTP submission -------------------------------------------------------------------------

    def smtp_session(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        stream = sock.makefile("rwb")
        tls = authenticated = False
        recipients: list[str] = []

        def send(line: str) -> None:
            stream.write(line.encode() + b"\r\n")
            stream.flush()

        send("220 double ESMTP")
        while line := stream.readline():
            command = line.decode().strip()
            verb = command.split(" ")[0].upper()
            if verb == "EHLO":
                send("250-double")
                send("250 AUTH PLAIN" if tls else "250 STARTTLS")
            elif verb == "STARTTLS":
                send("220 ready")
                sock = context.wrap_socket(sock, server_side=True)
                stream, tls = sock.makefile("rwb"), True
            elif verb == "AUTH" and tls:
                _, user, password = base64.b64decode(command.split(" ")[2]).decode().split("\0")
                authenticated = self.passwords.get(user) == password
                send("235 2.7.0 accepted" if authenticated else "535 5.7.8 authentication failed")
            elif verb == "MAIL":
                send("250 ok" if authenticated else "530 5.7.0 authentication required")
            elif verb == "RCPT":
                recipients.append(command.split("<", 1)[1].split(">", 1)[0])
                send("250 ok")
            elif verb == "DATA":
                send("354 go on")
                self._store(recipients, _read_data(stream))
                send("250 queued")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("250 ok")

    def _store(self, recipients: list[str], message: bytes) -> None:
        delivered = self.deliver(message)
        if delivered is not None:
            for recipient in recipients:
                self.mailboxes.setdefault(recipient, []).append(delivered)

    # --- IMAPS -----------------------------------------------------------------------------------

    def imap_session(self, sock: ssl.SSLSocket) -> None:
        stream = sock.makefile("rwb")
        user: str | None = None
        deleted: set[int] = set()

        def send(data: str | bytes) -> None:
            stream.write((data.encode() if isinstance(data, str) else data) + b"\r\n")
            stream.flush()

        send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] double ready")
        while line := stream.readline():
            tag, verb, *rest = shlex.split(line.decode().strip())
            verb = verb.upper()
            inbox = self.mailboxes.setdefault(user or "", [])
            if verb == "CAPABILITY":
                send("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
            elif verb == "LOGIN":
                if self.passwords.get(rest[0]) != rest[1]:
                    send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
                    continue
                user = rest[0]
            elif verb == "SELECT":
                send(f"* {len(inbox)} EXISTS")
            elif verb == "SEARCH":
                wanted = f"{rest[1]}: {rest[2]}".encode()
                found = [str(n) for n, message in enumerate(inbox, 1) if wanted in message]
                send(f"* SEARCH {' '.join(found)}".rstrip())
            elif verb == "FETCH":
                message = inbox[int(rest[0]) - 1]
                send(f"* {rest[0]} FETCH (BODY[] {{{len(message)}}}".encode() + b"\r\n" + message + b")")
            elif verb == "STORE":
                deleted.add(int(rest[0]))
            elif verb == "EXPUNGE":
                inbox[:] = [m for n, m in enumerate(inbox, 1) if n not in deleted]
                deleted.clear()
            elif verb == "LOGOUT":
                send("* BYE")
                send(f"{tag} OK LOGOUT completed")
                return
            send(f"{tag} OK {verb} completed")


def _read_data(stream: BinaryIO | Any) -> bytes:
    lines = []
    while (line := stream.readline()) not in (b".\r\n", b""):
        lines.append(line[1:] if line.startswith(b"..") else line)
    return b"".join(lines)
