"""A merchant's payglot notification receiver, verified with the Standard Webhooks library.

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... PORT=8000 python3 receiver.py

Every notification is a POST whose `webhook-id`, `webhook-timestamp` and `webhook-signature`
headers follow Standard Webhooks v1. A verified one is answered 204 (payglot stops retrying);
anything else 400 (payglot retries on its schedule). The event id is the idempotency key: a
retry of an event already handled is answered 204 again and not handled twice.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook

webhook = Webhook(os.environ["WEBHOOK_SECRET"])
handled = set()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode("utf-8")
        try:
            event = webhook.verify(body, {k.lower(): v for k, v in self.headers.items()})
        except Exception as e:  # WebhookVerificationError, or a body that is not JSON
            print(f"refused: {e}", flush=True)
            self.send_response(400)
            self.end_headers()
            return
        event_id = self.headers["webhook-id"]
        if event_id not in handled:
            handled.add(event_id)
            print(f"verified {event_id} {event['type']} {json.dumps(event['data'].get('out_trade_no'))}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"listening on 127.0.0.1:{port}", flush=True)
    sys.stdout.flush()
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
