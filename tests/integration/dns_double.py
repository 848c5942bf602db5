"""A small authoritative DNS responder built on dnspython (UDP and TCP, truncating like a real
server): a double of the data centre's BIND for integration tests, which are not about DNS."""

import socketserver
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests.conftest import free_port

Zone = dict[tuple[str, str], list[str]]  # (name without the dot, type) -> rdata texts


class AuthoritativeDnsDouble:
    """Answers from `zone` as an authoritative server: NXDOMAIN for unknown names, an empty answer
    for a known name without the type, TC over UDP when the answer does not fit (then TCP)."""

    def __init__(self) -> None:
        self.zone: Zone = {}
        self.port = free_port()
        double = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(double.answer(data, udp=True), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = int.from_bytes(self.rfile.read(2), "big")
                wire = double.answer(self.rfile.read(length), udp=False)
                self.wfile.write(len(wire).to_bytes(2, "big") + wire)

        self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp)
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
        for server in (self.udp, self.tcp):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answer(self, data: bytes, *, udp: bool) -> bytes:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        record_type = dns.rdatatype.to_text(question.rdtype)
        if not any(known == name for known, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (name, record_type) in self.zone:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 300, "IN", record_type, self.zone[(name, record_type)])
            )
        limit = (query.payload if query.edns >= 0 else 512) if udp else 65535
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()

    def close(self) -> None:
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()
