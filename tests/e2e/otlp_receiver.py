"""An OTLP/HTTP receiver for Weir's end-to-end tests.

Decodes every export with the official OpenTelemetry protobufs (PyPI `opentelemetry-proto`) and
prints one JSON line per request on stdout: {"path": "/v1/logs", "request": {...}} (the request as
protobuf's JSON mapping). Prints "listening PORT" once it accepts connections.

    python3 otlp_receiver.py PORT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

SIGNALS = {
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signal = SIGNALS.get(self.path)
        if signal is None:
            self.answer(404, b"")
            return
        if self.headers.get("Content-Type") != "application/x-protobuf":
            self.answer(415, b"")
            return
        request_type, response_type = signal
        request = request_type()
        request.ParseFromString(body)
        line = {"path": self.path, "request": MessageToDict(request)}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        self.answer(200, response_type().SerializeToString())

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    sys.stdout.write(f"listening {port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
