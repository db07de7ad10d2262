// A merchant's payglot notification receiver, verified with the Standard Webhooks library.
//
//   npm install            (standardwebhooks, from package.json)
//   WEBHOOK_SECRET=whsec_... PORT=8000 node receiver.js
//
// A verified notification is answered 204 (payglot stops retrying); anything else 400 (payglot
// retries). The webhook-id is the idempotency key: a retry of a handled event is acked again.
const http = require("http");
const { Webhook } = require("standardwebhooks");

const webhook = new Webhook(process.env.WEBHOOK_SECRET);
const handled = new Set();

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let event;
      try {
        event = webhook.verify(body, req.headers);
      } catch (e) {
        console.log(`refused: ${e.message}`);
        res.writeHead(400).end();
        return;
      }
      const id = req.headers["webhook-id"];
      if (!handled.has(id)) {
        handled.add(id);
        console.log(`verified ${id} ${event.type} ${JSON.stringify(event.data.out_trade_no)}`);
      }
      res.writeHead(204).end();
    });
  })
  .listen(Number(process.env.PORT || 8000), "127.0.0.1", () =>
    console.log(`listening on 127.0.0.1:${process.env.PORT || 8000}`)
  );
