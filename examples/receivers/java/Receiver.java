// A merchant's payglot notification receiver in Java, with the JDK only (the Standard Webhooks
// Java library is on Maven Central; this verifies by its specification, which is short):
//
//   javac Receiver.java && WEBHOOK_SECRET=whsec_... PORT=8000 java Receiver
//
// signed content = webhook-id + "." + webhook-timestamp + "." + body; the signature is
// "v1," + base64(HMAC-SHA256(base64-decoded secret after "whsec_", signed content)); the header
// may hold several, space-separated (during a secret rotation). Timestamps more than five
// minutes away are refused. A verified notification is answered 204, anything else 400.
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HashSet;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class Receiver {
    static boolean verify(byte[] key, String id, String timestamp, byte[] body, String header) throws Exception {
        long ts = Long.parseLong(timestamp);
        if (Math.abs(System.currentTimeMillis() / 1000 - ts) > 300) {
            return false;
        }
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        mac.update((id + "." + timestamp + ".").getBytes(StandardCharsets.UTF_8));
        byte[] expected = ("v1," + Base64.getEncoder().encodeToString(mac.doFinal(body))).getBytes(StandardCharsets.UTF_8);
        for (String given : header.split(" ")) {
            if (MessageDigest.isEqual(expected, given.getBytes(StandardCharsets.UTF_8))) {
                return true;
            }
        }
        return false;
    }

    public static void main(String[] args) throws IOException {
        String secret = System.getenv("WEBHOOK_SECRET");
        byte[] key = Base64.getDecoder().decode(secret.startsWith("whsec_") ? secret.substring(6) : secret);
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "8000"));
        Set<String> handled = new HashSet<>();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.createContext("/", exchange -> {
            byte[] body = exchange.getRequestBody().readAllBytes();
            String id = exchange.getRequestHeaders().getFirst("webhook-id");
            String timestamp = exchange.getRequestHeaders().getFirst("webhook-timestamp");
            String signature = exchange.getRequestHeaders().getFirst("webhook-signature");
            boolean ok;
            try {
                ok = id != null && timestamp != null && signature != null && verify(key, id, timestamp, body, signature);
            } catch (Exception e) {
                ok = false;
            }
            if (ok) {
                synchronized (handled) {
                    if (handled.add(id)) {
                        System.out.println("verified " + id);
                    }
                }
            } else {
                System.out.println("refused: signature does not verify");
            }
            System.out.flush();
            exchange.sendResponseHeaders(ok ? 204 : 400, -1);
            exchange.close();
        });
        server.start();
        System.out.println("listening on 127.0.0.1:" + port);
        System.out.flush();
    }
}
