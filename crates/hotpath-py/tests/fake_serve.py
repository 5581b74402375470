"""A stand-in for ``hotpath serve`` (standard library only) speaking its
API as its documentation gives it, for the client's tests on machines
whose ``hotpath`` has no ``serve`` yet; test_client_serve.py runs the same
client against the real server when it is there."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

TOKEN = "a-long-enough-secret-token"


class FakeServe:
    """The server and what it saw. ``publish(values)`` makes a new
    generation; the watch stream ends after ``drop_after`` events (to make
    the client reconnect); telemetry bodies of more than ``max_digests``
    lines are refused with 413."""

    def __init__(self) -> None:
        self.generation = 0
        self.values: Dict[str, Any] = {"batch_size": 64, "codec": "zlib"}
        self.changed = threading.Condition()
        self.telemetry: List[List[Dict[str, Any]]] = []
        self.watch_requests: List[Optional[str]] = []
        self.operator: List[str] = []
        self.queries: List[str] = []
        self.drop_after: Optional[int] = None
        self.max_digests = 1000
        self.stopping = False
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def publish(self, **values: Any) -> None:
        with self.changed:
            self.generation += 1
            self.values = dict(self.values, **values)
            self.changed.notify_all()

    def document(self) -> Dict[str, Any]:
        return {"generation": self.generation, "values": self.values}

    def close(self) -> None:
        with self.changed:
            self.stopping = True
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def send_json(self, status: int, document: Any) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def error(self, status: int, code: str, message: str) -> None:
                self.send_json(status, {"error": {"code": code, "message": message}})

            def authorised(self) -> bool:
                presented = self.headers.get("Authorization")
                if presented == f"Bearer {TOKEN}":
                    return True
                if presented is None:
                    self.error(401, "unauthorized", "this endpoint needs `Authorization: Bearer <token>`")
                else:
                    self.error(403, "forbidden", "the bearer token is not the server's")
                return False

            def do_GET(self) -> None:  # noqa: N802 - the handler's API
                path, _, query = self.path.partition("?")
                if path == "/healthz":
                    self.send_json(200, {"status": "ok"})
                elif path == "/v1/config":
                    self.send_json(200, fake.document())
                elif path == "/v1/status":
                    self.send_json(200, dict(fake.document(), safe_mode={"active": False, "reasons": []}))
                elif path == "/v1/audit":
                    fake.queries.append(query)
                    params = dict(urllib.parse.parse_qsl(query))
                    self.send_json(200, {"events": [], "next_after": params.get("after"),
                                         "oldest_seq": None, "truncated": False})
                elif path == "/v1/config/watch":
                    self.watch()
                else:
                    self.error(404, "not_found", f"no route {path}")

            def watch(self) -> None:
                try:
                    self.stream()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def stream(self) -> None:
                last = self.headers.get("Last-Event-ID")
                fake.watch_requests.append(last)
                sent = int(last) if last and last.isdigit() else None
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b": keep-alive\n\nretry: 50\n\n")
                self.wfile.flush()
                events = 0
                while True:
                    with fake.changed:
                        while not fake.stopping and sent is not None and fake.generation <= sent:
                            fake.changed.wait(0.05)
                            if fake.stopping:
                                break
                            self.wfile.write(b": keep-alive\n\n")
                            self.wfile.flush()
                        if fake.stopping:
                            return
                        document = fake.document()
                    data = json.dumps(document)
                    chunk = f"event: config\nid: {document['generation']}\ndata: {data}\n\n"
                    self.wfile.write(chunk.encode())
                    self.wfile.flush()
                    sent = document["generation"]
                    events += 1
                    if fake.drop_after is not None and events >= fake.drop_after:
                        return

            def do_POST(self) -> None:  # noqa: N802 - the handler's API
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if not self.authorised():
                    return
                if self.path == "/v1/telemetry":
                    lines = [line for line in body.decode().splitlines() if line.strip()]
                    if len(lines) > fake.max_digests:
                        self.error(413, "too_large", f"at most {fake.max_digests} digests")
                        return
                    try:
                        digests = [json.loads(line) for line in lines]
                    except ValueError as e:
                        self.error(400, "bad_telemetry", f"line 1: {e}")
                        return
                    fake.telemetry.append(digests)
                    stale = sum(1 for d in digests if d.get("generation") not in (None, fake.generation))
                    self.send_json(202, {"accepted": len(digests) - stale, "stale": stale,
                                         "generation": fake.generation})
                elif self.path in ("/v1/freeze", "/v1/resume", "/v1/rollback", "/v1/baseline"):
                    action = self.path.rsplit("/", 1)[1]
                    fake.operator.append(action)
                    self.send_json(200, {"action": action, "changed": True,
                                         "generation": fake.generation,
                                         "safe_mode": {"active": action == "freeze", "reasons": []}})
                else:
                    self.error(404, "not_found", f"no route {self.path}")

        return Handler
