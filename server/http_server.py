"""HTTP/1.1 plumbing for the serving app: one thread per keep-alive connection, at most
max_connections of them, and deadlines for a request's headers and body.

Why the cap and the deadlines: with one thread per connection and only a per-read socket timeout,
2,000 clients sending a byte a second held 2,000 threads (slowloris). Now a watchdog closes a
connection whose request line and headers (idle keep-alive wait included) or body take longer
than their deadline, however steadily the bytes trickle in, and a connection over the cap goes to
the probe lane: a few more threads (probe_slots) that read one request within PROBE_TIMEOUT_S and
answer it only if it is a body-less GET or HEAD (health, readiness, model status and metadata:
what Kubernetes' probes and monitoring ask), else 503. So slow clients filling the cap cannot fail
a liveness probe and get a healthy server restarted. Over both, an immediate 503.
"""
from __future__ import annotations

import dataclasses
import email.utils
import logging
import re
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tfx_gan.server.app import Response, ServingApp, error

_LENGTH = re.compile(r"[0-9]{1,19}", re.ASCII)
LOG = logging.getLogger("tfx_gan.server")

DEFAULT_MAX_CONNECTIONS = 64       # open connections (one thread each); more get a 503
DEFAULT_HEADER_TIMEOUT_S = 10.0    # request line + headers, including a keep-alive connection's idle wait
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_PROBE_SLOTS = 8            # connections over the cap that may still ask a GET (health probes)
PROBE_TIMEOUT_S = 2.0              # the probe lane's deadline for a request line and headers
_PROBE_HEAD_BYTES = 8192
SERVER_VERSION = "gan-serving"


def response_bytes(response: Response, head_only: bool = False, protocol: str = "HTTP/1.1") -> bytes:
    """Status line, headers and body of ``response``, for one write."""
    body = response.encoded()
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    headers = {"Server": SERVER_VERSION, "Date": email.utils.formatdate(usegmt=True),
               "Content-Type": "application/json", "Content-Length": str(len(body)), **response.headers}
    if response.close:
        headers["Connection"] = "close"
    head = f"{protocol} {int(response.status)} {phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode("latin-1") + (b"" if head_only else body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = SERVER_VERSION
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on keep-alive connections
    timeout = 120  # per-read socket timeout, a backstop: the deadlines below bound slow clients

    server: "ServingHTTPServer"

    # Deadlines that a slow client cannot stretch (a per-read socket timeout restarts with every
    # byte, so a client sending one byte a second would hold its thread for ever): a watchdog
    # shuts the connection down when the request line and headers, or the body, take too long.
    def setup(self):
        super().setup()
        self._watchdog: threading.Timer | None = None

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._watchdog = threading.Timer(seconds, self._expire, args=(what,))
        self._watchdog.daemon = True
        self._watchdog.start()

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _expire(self, what: str) -> None:
        LOG.info("closing the connection from %s: %s took too long", self.address_string(), what)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_one_request(self):
        self._arm(self.server.header_timeout_s, "the request line and headers")
        try:
            super().handle_one_request()
        finally:
            self._disarm()

    def parse_request(self):
        ok = super().parse_request()
        self._disarm()  # headers are in; the body has its own deadline
        return ok

    def finish(self):
        self._disarm()
        super().finish()

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        if self.server.access_log:
            LOG.info("%s %s", self.address_string(), fmt % args)

    def send_error(self, code, message=None, explain=None):  # JSON instead of the stdlib's HTML
        if code == HTTPStatus.NOT_IMPLEMENTED:  # the stdlib's answer to an unknown method
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command!r} not allowed"
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._respond(error(code, message or phrase, close=True))

    def handle_expect_100(self):
        length = self._declared_length()
        if isinstance(length, int) and length > self.server.app.max_body_bytes:
            self._respond(self._too_large(length))
            return False
        return super().handle_expect_100()

    def _declared_length(self) -> int | None | Response:
        """The Content-Length header as a number: None when absent; a 400 when it is given more than
        once or is not 1-19 ASCII digits (str.isdigit would take other scripts' digits)."""
        values = self.headers.get_all("Content-Length") or []
        if len(values) > 1:
            return error(400, f"Content-Length given {len(values)} times", close=True)
        if not values:
            return None
        if not _LENGTH.fullmatch(values[0].strip(" \t")):
            return error(400, f"invalid Content-Length {values[0][:40]!r}", close=True)
        return int(values[0])

    def _too_large(self, length: int) -> Response:
        limit = self.server.app.max_body_bytes
        return error(413, f"request body of {length} bytes exceeds the limit of {limit} bytes", close=True)

    def do_GET(self):  # noqa: N802
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    def do_PUT(self):  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self):  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self):  # noqa: N802
        self._handle("PATCH")

    def do_HEAD(self):  # noqa: N802
        self._handle("HEAD")

    def do_OPTIONS(self):  # noqa: N802
        self._handle("OPTIONS")

    def _handle(self, method: str) -> None:
        app = self.server.app
        try:
            route = app.route(method, self.path)
            if isinstance(route, Response):
                self._discard_body()
                response = route
            elif route.has_body:
                body = self._read_body()
                response = body if isinstance(body, Response) or body is None else app.answer(route, body, self.headers)
            else:
                self._discard_body()
                response = app.answer(route)
        except Exception as exc:  # a bug must not kill the connection silently
            LOG.exception("internal error handling %s %s", method, self.path)
            response = error(500, f"internal error: {type(exc).__name__}: {exc}")
        if response is not None:
            self._respond(response)

    def _content_length(self) -> int | Response:
        if self.headers.get("Transfer-Encoding"):
            return error(411, "chunked request bodies are not supported; send Content-Length", close=True)
        length = self._declared_length()
        if length is None:
            return error(411, "Content-Length required", close=True)
        if isinstance(length, Response):
            return length
        if length > self.server.app.max_body_bytes:
            return self._too_large(length)
        return length

    def _read_body(self) -> bytes | Response | None:
        length = self._content_length()
        if isinstance(length, Response):
            return length
        self._arm(self.server.body_timeout_s, "the request body")
        try:
            body = self.rfile.read(length)
        except OSError:
            body = b""
        finally:
            self._disarm()
        if len(body) < length:  # client went away (or was too slow) mid-body
            self.close_connection = True
            return None
        return body

    def _discard_body(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return
        length = self._declared_length()
        if not length:  # none, or zero
            return
        if isinstance(length, int) and length <= self.server.app.max_body_bytes:
            # the same deadline as any body: a client that declares one and never sends it is cut off
            self._arm(self.server.body_timeout_s, "the request body")
            try:
                got = len(self.rfile.read(length))
            except OSError:
                got = 0
            finally:
                self._disarm()
            if got < length:
                self.close_connection = True
        else:
            self.close_connection = True

    def _respond(self, response: Response) -> None:
        """Status line, headers and body in one write: one wake-up for the client, not two."""
        if response.close:
            self.close_connection = True
        if response.status >= 400 and isinstance(response.payload, dict):  # every refusal, named in one line
            # (command and path are unset when the request line itself was refused)
            LOG.info("%s %s %s: %d %s", self.address_string(), getattr(self, "command", None) or "-",
                     str(getattr(self, "path", "-"))[:200], response.status,
                     str(response.payload.get("error", ""))[:300])
        data = response_bytes(response, head_only=getattr(self, "command", None) == "HEAD",
                              protocol=self.protocol_version)
        self.log_request(response.status, len(response.encoded()))
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class ServingHTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` of them, plus ``probe_slots`` threads
    of the probe lane (module docstring): idle or slow clients cannot exhaust the threads, nor
    starve the health probes."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: ServingApp, access_log: bool = False,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
                 body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S, probe_slots: int = DEFAULT_PROBE_SLOTS):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        if max_connections < 1 or header_timeout_s <= 0 or body_timeout_s <= 0 or probe_slots < 1:
            raise ValueError("max_connections, header_timeout_s, body_timeout_s and probe_slots must be positive")
        self.app = app
        self.access_log = access_log
        self.header_timeout_s = float(header_timeout_s)
        self.body_timeout_s = float(body_timeout_s)
        self._connection_slots = threading.BoundedSemaphore(max_connections)
        self._probe_slots = threading.BoundedSemaphore(probe_slots)
        self.max_connections = int(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        if not self._connection_slots.acquire(blocking=False):
            if self._probe_slots.acquire(blocking=False):
                threading.Thread(target=self._probe_lane, args=(request,), daemon=True, name="probe").start()
            else:
                self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connection_slots.release()
            raise

    def _too_many(self) -> Response:
        return Response(503, {"error": f"too many connections (limit {self.max_connections}); retry later"},
                        {"Retry-After": "1"}, close=True)

    def _refuse(self, request) -> None:
        try:
            request.settimeout(1.0)
            request.sendall(response_bytes(self._too_many()))
        except OSError:
            pass  # the client is gone or not reading: the 503 was best effort, the socket is closed below
        self.shutdown_request(request)

    def _probe_lane(self, request) -> None:
        """A connection over the cap: one request, read within PROBE_TIMEOUT_S; a body-less GET or
        HEAD is answered by the app, anything else (or nothing in time) gets the 503."""
        response, head_only = None, False
        try:
            data, deadline = b"", time.monotonic() + PROBE_TIMEOUT_S
            while b"\r\n\r\n" not in data and len(data) < _PROBE_HEAD_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                request.settimeout(remaining)
                chunk = request.recv(4096)
                if not chunk:
                    break
                data += chunk
            head, complete, _ = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            has_body = any(line.lower().startswith(("content-length:", "transfer-encoding:"))
                           and line.split(":", 1)[1].strip() not in ("", "0") for line in lines[1:])
            if complete and len(parts) == 3 and parts[0] in ("GET", "HEAD") and not has_body:
                head_only = parts[0] == "HEAD"
                route = self.app.route(parts[0], parts[1])
                answer = route if isinstance(route, Response) else None if route.has_body else self.app.answer(route)
                if answer is not None:
                    response = dataclasses.replace(answer, close=True)
            if response is None:
                response = self._too_many()
            request.settimeout(1.0)
            request.sendall(response_bytes(response, head_only=head_only))
        except OSError:
            pass  # the client went silent (timeout) or away: nothing more to send, the socket is closed below
        except Exception:  # a bug must not kill the lane silently
            LOG.exception("internal error in the probe lane")
        finally:
            self.shutdown_request(request)
            self._probe_slots.release()

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connection_slots.release()


class RunningServer:
    """A server running in background threads (tests, benchmarks, notebooks)."""

    def __init__(self, app: ServingApp, httpd: ServingHTTPServer):
        self.app = app
        self.httpd = httpd
        self.host, self.port = httpd.server_address[:2]
        self.url = f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        app.start()

    def close(self) -> None:
        self.app.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_server(
    models: dict[str, str], host: str = "127.0.0.1", port: int = 0, access_log: bool = False,
    max_connections: int = DEFAULT_MAX_CONNECTIONS, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S, **app_kwargs
) -> RunningServer:
    """Loads ``models`` (name -> push directory), then serves them on host:port in the background."""
    app = ServingApp(models, **app_kwargs)
    app.load_initial()
    return RunningServer(app, ServingHTTPServer((host, port), app, access_log=access_log, max_connections=max_connections,
                                                header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s))

