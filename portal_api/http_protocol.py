"""uvicorn's httptools protocol, answering a request before refusing what follows it on the connection.

httptools parses whatever arrives, so bytes after a complete request that cannot start another
(a client sending more than its Content-Length) made uvicorn answer 400 and close the connection
at once, before the response to the request it had already read; h11 answers that request first.
Here the refusal waits for that response, as with h11, and nothing more is read meanwhile.
"""

from uvicorn.protocols.http import httptools_impl


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    _deferred_refusal: str | None = None

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.more_body and not cycle.response_complete:
            self._deferred_refusal = msg
            self.flow.pause_reading()
            return
        super().send_400_response(msg)

    def data_received(self, data: bytes) -> None:
        if self._deferred_refusal is None:  # after a refusal, nothing more on this connection is parsed
            super().data_received(data)

    def on_response_complete(self) -> None:
        refusal, self._deferred_refusal = self._deferred_refusal, None
        if refusal is None:
            super().on_response_complete()
            return
        self.server_state.total_requests += 1
        if not self.transport.is_closing():
            super().send_400_response(refusal)
