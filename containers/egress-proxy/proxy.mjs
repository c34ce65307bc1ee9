// Local stand-in for the network sidecar that workerd starts next to every container in
// `wrangler dev` (MINIFLARE_CONTAINER_EGRESS_IMAGE). The user container shares this sidecar's
// network namespace, so workerd reaches the container's ports through the sidecar's ingress:
//   PUT /egress        egress settings (accepted; outbound interception is not emulated locally)
//   GET /ca            the CA certificate workerd would install for TLS interception
//   CONNECT host:port  with X-Dst-Addr: 127.0.0.1:PORT, a raw TCP tunnel to that address; only
//                      loopback destinations (the container's own ports) are tunnelled, so the
//                      ingress can never serve as a relay to another address (403 otherwise)
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { connect } from "node:net";

function argument(name, fallback) {
  const index = process.argv.indexOf(name);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const ingress = argument("--http-ingress-address", "0.0.0.0:39001");
const separator = ingress.lastIndexOf(":");
const ingressHost = ingress.slice(0, separator) || "0.0.0.0";
const ingressPort = Number(ingress.slice(separator + 1));
const caCertificate = readFileSync(new URL("./ca.pem", import.meta.url));
/** The only hosts a tunnel may lead to: this network namespace's loopback, shared with the container. */
const TUNNEL_HOSTS = new Set(["127.0.0.1", "::1", "localhost"]);

const server = createServer((request, response) => {
  if (request.method === "PUT" && request.url === "/egress") {
    request.resume();
    request.on("end", () => response.writeHead(200).end());
    return;
  }
  if (request.method === "GET" && request.url === "/ca") {
    response.writeHead(200, { "content-type": "application/x-pem-file" }).end(caCertificate);
    return;
  }
  response.writeHead(404).end();
});

server.on("connect", (request, clientSocket, head) => {
  const destination = String(request.headers["x-dst-addr"] ?? request.url ?? "");
  const split = destination.lastIndexOf(":");
  const host = destination.slice(0, split).replace(/^\[|\]$/g, "") || "127.0.0.1";
  const port = Number(destination.slice(split + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    clientSocket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    return;
  }
  if (!TUNNEL_HOSTS.has(host)) {
    clientSocket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
    return;
  }
  const upstream = connect({ host, port });
  upstream.once("connect", () => {
    clientSocket.write("HTTP/1.1 200 OK\r\n\r\n");
    if (head.length > 0) upstream.write(head);
    upstream.pipe(clientSocket);
    clientSocket.pipe(upstream);
  });
  // Refused while the container boots: workerd retries on 400.
  upstream.once("error", () => {
    if (!clientSocket.destroyed) clientSocket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
  });
  clientSocket.on("error", () => upstream.destroy());
  upstream.on("close", () => clientSocket.destroy());
  clientSocket.on("close", () => upstream.destroy());
});

server.listen(ingressPort, ingressHost);
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
