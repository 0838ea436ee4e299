// SluiceExampleBackend: a small embedded Jetty 9.4 backend used as the reference upstream for
// Sluice demos and end-to-end tests. Plain Java, no build tool: see ../build.sh and ../run.sh.
//
// Endpoints (all text/plain; charset=utf-8, all set "x-backend: NAME"):
//   /health                      200 "ok\n"
//   /echo and every other path   200, lists method, uri, protocol, remote, every header, body-bytes
//   /slow?ms=N                   sleeps N ms (default 2000), then 200 "slow N\n"
//   /large?bytes=N               N bytes (default 1 MiB) of "0123456789abcdef" repeated, Content-Length set
//   /chunked?chunks=N&size=S     N flushes of S bytes, no Content-Length (chunked); optional delay-ms=D
//   /upload                      streams the body, 200 "bytes: N\nsha256: HEX\n"
//   /status/NNN                  status NNN, body "status NNN\n"
//   /ws/echo                     WebSocket: echoes text as text and binary as binary (messages up
//                                to 16 MiB); the text "close-me" makes it close with code 1000
//
// One port serves HTTP/1.1 and HTTP/2 cleartext (h2c: prior knowledge or Upgrade: h2c); every
// endpoint but /ws/echo works over both (Jetty 9.4 has no WebSocket over HTTP/2).
//
// Query strings are parsed by hand (never request.getParameter()), so a POST with a large
// application/x-www-form-urlencoded body (what `curl --data-binary` sends) is never form-parsed.

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URLDecoder;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http2.server.HTTP2CServerConnectionFactory;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.StatisticsHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.api.StatusCode;
import org.eclipse.jetty.websocket.api.annotations.OnWebSocketMessage;
import org.eclipse.jetty.websocket.api.annotations.WebSocket;
import org.eclipse.jetty.websocket.servlet.WebSocketServlet;
import org.eclipse.jetty.websocket.servlet.WebSocketServletFactory;

public final class SluiceExampleBackend {
    static final String TEXT = "text/plain; charset=utf-8";
    static final byte[] PATTERN = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
    static final int WRITE_SIZE = 64 * 1024; // a multiple of PATTERN.length
    static final int READ_SIZE = 8 * 1024;
    static final long STOP_TIMEOUT_MS = 2000; // grace for in-flight requests on SIGTERM
    // Largest WebSocket message /ws/echo takes (text or binary, after reassembly of fragments).
    // Jetty's default is 64 KiB; the proxy's tests send up to 2 MiB, so leave room above that.
    static final int WS_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
    static final String WS_CLOSE_COMMAND = "close-me";

    /** 64 KiB of the repeating pattern; since 64 KiB is a multiple of 16, every write starts at pattern offset 0. */
    static final byte[] PATTERN_BLOCK = new byte[WRITE_SIZE];

    static {
        for (int i = 0; i < PATTERN_BLOCK.length; i++) {
            PATTERN_BLOCK[i] = PATTERN[i % PATTERN.length];
        }
    }

    private SluiceExampleBackend() {}

    // ------------------------------------------------------------------ command line

    static final class Options {
        int port = -1;
        String host = "127.0.0.1";
        String name = "jetty";
        long idleTimeoutMs = -1; // -1: keep Jetty's default (30000)
    }

    static void usage(PrintStream out) {
        out.println("usage: SluiceExampleBackend --port N [--host H] [--name NAME] [--idle-timeout-ms N]");
        out.println("  --port N             TCP port to listen on (required; 0 picks a free port)");
        out.println("  --host H             address to bind (default 127.0.0.1)");
        out.println("  --name NAME          reported as 'backend: NAME' and 'x-backend: NAME' (default jetty)");
        out.println("  --idle-timeout-ms N  connector idle timeout (default Jetty's 30000)");
    }

    static void die(String message) {
        System.err.println("sluice-example-backend: " + message);
        usage(System.err);
        System.exit(2);
    }

    static Options parse(String[] args) {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            String value = null;
            int eq = arg.indexOf('=');
            if (arg.startsWith("--") && eq > 0) {
                value = arg.substring(eq + 1);
                arg = arg.substring(0, eq);
            }
            if (arg.equals("-h") || arg.equals("--help")) {
                usage(System.out);
                System.exit(0);
            }
            if (!arg.equals("--port") && !arg.equals("--host") && !arg.equals("--name")
                    && !arg.equals("--idle-timeout-ms")) {
                die("unknown argument: " + args[i]);
            }
            if (value == null) {
                if (i + 1 >= args.length) {
                    die("missing value for " + arg);
                }
                value = args[++i];
            }
            switch (arg) {
                case "--port":
                    o.port = parseIntArg(arg, value, 0, 65535);
                    break;
                case "--host":
                    o.host = value;
                    break;
                case "--name":
                    o.name = value;
                    break;
                case "--idle-timeout-ms":
                    o.idleTimeoutMs = parseIntArg(arg, value, 1, Integer.MAX_VALUE);
                    break;
                default:
                    break;
            }
        }
        if (o.port < 0) {
            die("--port is required");
        }
        return o;
    }

    static int parseIntArg(String arg, String value, int min, int max) {
        try {
            int v = Integer.parseInt(value);
            if (v >= min && v <= max) {
                return v;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        die(arg + " must be an integer in [" + min + ", " + max + "], got '" + value + "'");
        return -1; // unreachable
    }

    // ------------------------------------------------------------------ main

    public static void main(String[] args) throws Exception {
        Options o = parse(args);

        Server server = new Server();

        HttpConfiguration httpConfig = new HttpConfiguration();
        // One port for HTTP/1.1 and HTTP/2 cleartext (h2c): Jetty's HttpConnection starts every
        // connection as HTTP/1.1 and hands it to the h2c factory when the first bytes are the
        // HTTP/2 preface ("PRI * HTTP/2.0", prior knowledge), or on an "Upgrade: h2c" request.
        // So an HTTP/1 cluster and an HTTP/2 cluster can point at the same backend.
        ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(httpConfig),
                new HTTP2CServerConnectionFactory(httpConfig));
        connector.setHost(o.host);
        connector.setPort(o.port);
        if (o.idleTimeoutMs > 0) {
            connector.setIdleTimeout(o.idleTimeoutMs);
        }
        server.addConnector(connector);

        ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
        context.setContextPath("/");
        context.addServlet(new ServletHolder("health", new HealthServlet(o.name)), "/health");
        context.addServlet(new ServletHolder("slow", new SlowServlet(o.name)), "/slow");
        context.addServlet(new ServletHolder("large", new LargeServlet(o.name)), "/large");
        context.addServlet(new ServletHolder("chunked", new ChunkedServlet(o.name)), "/chunked");
        context.addServlet(new ServletHolder("upload", new UploadServlet(o.name)), "/upload");
        context.addServlet(new ServletHolder("status", new StatusServlet(o.name)), "/status/*");
        context.addServlet(new ServletHolder("ws-echo", new WsEchoServlet(o.name)), "/ws/echo");
        ServletHolder echo = new ServletHolder("echo", new EchoServlet(o.name));
        context.addServlet(echo, "/echo");
        context.addServlet(echo, "/*");
        // StatisticsHandler makes the stop graceful: in-flight requests may finish (up to the
        // stop timeout) while the connector stops accepting.
        StatisticsHandler stats = new StatisticsHandler();
        stats.setHandler(context);
        server.setHandler(stats);

        // SIGTERM / SIGINT run the JVM shutdown hooks; Jetty's hook stops the server gracefully.
        server.setStopAtShutdown(true);
        server.setStopTimeout(STOP_TIMEOUT_MS);

        try {
            server.start();
        } catch (Exception e) {
            System.err.println("sluice-example-backend: cannot listen on " + o.host + ":" + o.port + ": " + e);
            try {
                server.stop();
            } catch (Exception ignored) {
                // already failing
            }
            System.exit(1);
        }

        System.out.println("sluice-example-backend " + o.name + " listening on " + o.host + ":"
                + connector.getLocalPort());
        System.out.flush();
        server.join();
    }

    // ------------------------------------------------------------------ helpers

    /** Parses the raw query string by hand; the last occurrence of a key wins. Never touches the body. */
    static Map<String, String> query(HttpServletRequest req) {
        Map<String, String> params = new HashMap<>();
        String qs = req.getQueryString();
        if (qs == null || qs.isEmpty()) {
            return params;
        }
        for (String pair : qs.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            String value = eq < 0 ? "" : pair.substring(eq + 1);
            try {
                params.put(URLDecoder.decode(key, StandardCharsets.UTF_8),
                        URLDecoder.decode(value, StandardCharsets.UTF_8));
            } catch (IllegalArgumentException e) {
                params.put(key, value);
            }
        }
        return params;
    }

    /** Thrown for a bad query parameter; answered with 400. */
    static final class BadRequest extends Exception {
        BadRequest(String message) {
            super(message);
        }
    }

    static long longParam(Map<String, String> params, String key, long dflt, long min, long max) throws BadRequest {
        String v = params.get(key);
        if (v == null) {
            return dflt;
        }
        try {
            long n = Long.parseLong(v.trim());
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new BadRequest(key + " must be an integer in [" + min + ", " + max + "], got '" + v + "'");
    }

    /**
     * Sets "Content-Type: text/plain; charset=utf-8" verbatim. resp.setContentType() would be
     * rewritten by Jetty to its canonical "text/plain;charset=utf-8"; the bodies are written as
     * bytes, so Jetty never needs to know the charset.
     */
    static void setTextContentType(HttpServletResponse resp) {
        if (resp instanceof Response) {
            ((Response) resp).getHttpFields().put(HttpHeader.CONTENT_TYPE, TEXT);
        } else {
            resp.setContentType(TEXT);
        }
    }

    static void sendText(HttpServletResponse resp, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        resp.setStatus(status);
        setTextContentType(resp);
        resp.setContentLength(bytes.length);
        resp.getOutputStream().write(bytes);
    }

    static boolean isHead(HttpServletRequest req) {
        return "HEAD".equalsIgnoreCase(req.getMethod());
    }

    /** Base class: every method (GET, POST, PUT, PATCH, custom...) goes to handle(). */
    abstract static class Endpoint extends HttpServlet {
        private static final long serialVersionUID = 1L;
        final String name;

        Endpoint(String name) {
            this.name = name;
        }

        @Override
        protected final void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            resp.setHeader("x-backend", name);
            try {
                handle(req, resp);
            } catch (BadRequest e) {
                if (!resp.isCommitted()) {
                    resp.reset();
                    resp.setHeader("x-backend", name);
                    sendText(resp, 400, "bad request: " + e.getMessage() + "\n");
                }
            }
        }

        abstract void handle(HttpServletRequest req, HttpServletResponse resp) throws IOException, BadRequest;
    }

    // ------------------------------------------------------------------ endpoints

    static final class HealthServlet extends Endpoint {
        private static final long serialVersionUID = 1L;

        HealthServlet(String name) {
            super(name);
        }

        @Override
        void handle(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            sendText(resp, 200, "ok\n");
        }
    }

    static final class EchoServlet extends Endpoint {
        private static final long serialVersionUID = 1L;

        EchoServlet(String name) {
            super(name);
        }

        @Override
        void handle(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            long bodyBytes = 0;
            byte[] buf = new byte[READ_SIZE];
            try (InputStream in = req.getInputStream()) {
                for (int n; (n = in.read(buf)) != -1; ) {
                    bodyBytes += n;
                }
            }

            StringBuilder sb = new StringBuilder(512);
            sb.append("backend: ").append(name).append('\n');
            sb.append("method: ").append(req.getMethod()).append('\n');
            // getRequestURI() is the path as received (not decoded, not normalised).
            sb.append("uri: ").append(req.getRequestURI());
            if (req.getQueryString() != null) {
                sb.append('?').append(req.getQueryString());
            }
            sb.append('\n');
            sb.append("protocol: ").append(req.getProtocol()).append('\n');
            sb.append("remote: ").append(req.getRemoteAddr()).append('\n');
            // Iterate Jetty's own field list: one entry per header line, in arrival order
            // (HttpServletRequest.getHeaderNames() would de-duplicate and lose the order).
            for (HttpField field : Request.getBaseRequest(req).getHttpFields()) {
                sb.append("header: ").append(field.getName().toLowerCase(Locale.ROOT)).append(": ")
                        .append(field.getValue() == null ? "" : field.getValue()).append('\n');
            }
            sb.append("body-bytes: ").append(bodyBytes).append('\n');
            sendText(resp, 200, sb.toString());
        }
    }

    static final class SlowServlet extends Endpoint {
        private static final long serialVersionUID = 1L;

        SlowServlet(String name) {
            super(name);
        }

        @Override
        void handle(HttpServletRequest req, HttpServletResponse resp) throws IOException, BadRequest {
            long ms = longParam(query(req), "ms", 2000, 0, Long.MAX_VALUE / 2);
            try {
                Thread.sleep(ms);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt(); // server stopping
                return;
            }
            sendText(resp, 200, "slow " + ms + "\n");
        }
    }

    static final class LargeServlet extends Endpoint {
        private static final long serialVersionUID = 1L;

        LargeServlet(String name) {
            super(name);
        }

        @Override
        void handle(HttpServletRequest req, HttpServletResponse resp) throws IOException, BadRequest {
            long total = longParam(query(req), "bytes", 1048576L, 0, Long.MAX_VALUE);
            resp.setStatus(200);
            setTextContentType(resp);
            resp.setContentLengthLong(total);
            if (isHead(req)) {
                return;
            }
            OutputStream out = resp.getOutputStream();
            for (long left = total; left > 0; ) {
                int n = (int) Math.min(left, WRITE_SIZE);
                out.write(PATTERN_BLOCK, 0, n);
                left -= n;
            }
        }
    }

    static final class ChunkedServlet extends Endpoint {
        private static final long serialVersionUID = 1L;

        ChunkedServlet(String name) {
            super(name);
        }

        @Override
        void handle(HttpServletRequest req, HttpServletResponse resp) throws IOException, BadRequest {
            Map<String, String> q = query(req);
            long chunks = longParam(q, "chunks", 4, 0, Long.MAX_VALUE);
            long size = longParam(q, "size", 1024, 0, Long.MAX_VALUE);
            long delayMs = longParam(q, "delay-ms", 0, 0, Long.MAX_VALUE / 2);
            resp.setStatus(200);
            setTextContentType(resp);
            if (isHead(req)) {
                resp.flushBuffer(); // commit without Content-Length, as the GET would
                return;
            }
            OutputStream out = resp.getOutputStream();
            long offset = 0; // position in the repeating pattern, continued across chunks
            for (long c = 0; c < chunks; c++) {
                if (c > 0 && delayMs > 0) {
                    try {
                        Thread.sleep(delayMs);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                for (long left = size; left > 0; ) {
                    int start = (int) (offset % PATTERN.length);
                    int n = (int) Math.min(left, WRITE_SIZE - start);
                    out.write(PATTERN_BLOCK, start, n);
                    left -= n;
                    offset += n;
                }
                // Committing before the servlet returns, with no Content-Length: Jetty answers
                // HTTP/1.1 clients with Transfer-Encoding: chunked.
                resp.flushBuffer();
            }
        }
    }

    static final class UploadServlet extends Endpoint {
        private static final long serialVersionUID = 1L;

        UploadServlet(String name) {
            super(name);
        }

        @Override
        void handle(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            MessageDigest sha;
            try {
                sha = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IOException(e);
            }
            long total = 0;
            byte[] buf = new byte[READ_SIZE];
            try (InputStream in = req.getInputStream()) {
                for (int n; (n = in.read(buf)) != -1; ) {
                    sha.update(buf, 0, n);
                    total += n;
                }
            }
            StringBuilder hex = new StringBuilder(64);
            for (byte b : sha.digest()) {
                hex.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
            }
            sendText(resp, 200, "bytes: " + total + "\nsha256: " + hex + "\n");
        }
    }

    static final class StatusServlet extends Endpoint {
        private static final long serialVersionUID = 1L;

        StatusServlet(String name) {
            super(name);
        }

        @Override
        void handle(HttpServletRequest req, HttpServletResponse resp) throws IOException, BadRequest {
            String info = req.getPathInfo(); // "/503"
            String digits = info == null ? "" : info.substring(1);
            int status;
            try {
                status = Integer.parseInt(digits);
            } catch (NumberFormatException e) {
                throw new BadRequest("use /status/NNN with NNN in [200, 599], got '" + digits + "'");
            }
            if (digits.length() != 3 || status < 200 || status > 599) {
                throw new BadRequest("use /status/NNN with NNN in [200, 599], got '" + digits + "'");
            }
            if (status == 204 || status == 304) {
                resp.setStatus(status); // these must not carry a body
                return;
            }
            sendText(resp, status, "status " + status + "\n");
        }
    }

    // ------------------------------------------------------------------ WebSocket

    /** /ws/echo: the upgrade (the 101 response carries x-backend too) and the echo socket. */
    static final class WsEchoServlet extends WebSocketServlet {
        private static final long serialVersionUID = 1L;
        final String name;

        WsEchoServlet(String name) {
            this.name = name;
        }

        @Override
        public void configure(WebSocketServletFactory factory) {
            factory.getPolicy().setMaxTextMessageSize(WS_MAX_MESSAGE_BYTES);
            factory.getPolicy().setMaxBinaryMessageSize(WS_MAX_MESSAGE_BYTES);
            factory.setCreator((req, resp) -> {
                resp.setHeader("x-backend", name);
                return new WsEchoSocket();
            });
        }
    }

    /**
     * Echoes each whole message back with the same type. Sends are blocking, so replies leave in
     * the order the messages arrived.
     */
    @WebSocket(maxTextMessageSize = WS_MAX_MESSAGE_BYTES, maxBinaryMessageSize = WS_MAX_MESSAGE_BYTES)
    public static final class WsEchoSocket {
        @OnWebSocketMessage
        public void onText(Session session, String message) throws IOException {
            if (WS_CLOSE_COMMAND.equals(message)) {
                session.close(StatusCode.NORMAL, "closing on request");
                return;
            }
            session.getRemote().sendString(message);
        }

        @OnWebSocketMessage
        public void onBinary(Session session, byte[] buf, int offset, int length) throws IOException {
            session.getRemote().sendBytes(ByteBuffer.wrap(buf, offset, length));
        }
    }
}
