// Socket.IO peer for the anypush benchmark: one room per channel.
// Subscribers connect with ?ch=NAME (Engine.IO v4, polling or websocket) and
// join that room; POST /publish?ch=NAME with a JSON body emits
// 42["msg",BODY] to the room.  GET /stats gives {"clients":N}.
// Usage: node sio_server.js PORT [PORTFILE]   (binds 127.0.0.1 only)
"use strict";
const http = require("http");
const fs = require("fs");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const srv = http.createServer((req, res) => {
  const u = new URL(req.url, "http://127.0.0.1");
  if (req.method === "POST" && u.pathname === "/publish") {
    const ch = u.searchParams.get("ch");
    const parts = [];
    req.on("data", (d) => parts.push(d));
    req.on("end", () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(parts).toString("utf8"));
      } catch (e) {
        res.writeHead(400, { "Content-Type": "application/json" });
        res.end('{"error":"bad_json"}');
        return;
      }
      io.to(ch).emit("msg", body);
      res.writeHead(201, { "Content-Type": "application/json" });
      res.end('{"ok":true}');
    });
    return;
  }
  if (req.method === "GET" && u.pathname === "/stats") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ clients: io.engine.clientsCount }));
    return;
  }
  res.writeHead(404);
  res.end();
});
srv.keepAliveTimeout = 120000;
srv.headersTimeout = 121000;
srv.maxRequestsPerSocket = 0;

const io = new Server(srv, {
  transports: ["polling", "websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  pingInterval: 25000,
  pingTimeout: 60000,
  maxHttpBufferSize: 1e6,
  serveClient: false,
});
io.on("connection", (socket) => {
  const ch = socket.handshake.query.ch;
  if (typeof ch === "string" && ch) socket.join(ch);
});

srv.listen(port, "127.0.0.1", () => {
  const p = srv.address().port;
  if (process.argv[3]) fs.writeFileSync(process.argv[3], String(p));
  else console.log(p);
});
process.on("SIGTERM", () => process.exit(0));
