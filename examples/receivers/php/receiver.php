<?php
// A merchant's payglot notification receiver in PHP, verified with the Standard Webhooks
// library (composer require standard-webhooks/standard-webhooks):
//
//   WEBHOOK_SECRET=whsec_... php -S 127.0.0.1:8000 receiver.php
//
// A verified notification is answered 204; anything else 400 (payglot retries). This machine
// has no PHP, so CI does not run this one.
require __DIR__ . '/vendor/autoload.php';

use StandardWebhooks\Webhook;

$webhook = new Webhook(getenv('WEBHOOK_SECRET'));
$body = file_get_contents('php://input');
$headers = array_change_key_case(getallheaders(), CASE_LOWER);
try {
    $event = $webhook->verify($body, $headers);
} catch (Exception $e) {
    error_log('refused: ' . $e->getMessage());
    http_response_code(400);
    exit;
}
// webhook-id is the idempotency key: handle each event once, ack every retry.
error_log('verified ' . $headers['webhook-id'] . ' ' . $event['type']);
http_response_code(204);
