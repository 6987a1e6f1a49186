// The Node peer of anapars-hub: the hub's chat relay and announcement fan-out written the way a
// Node team would write it with the `ws` package, as a benchmark fixture for the load harness
// (loadtest/peers/README.md). In memory only; no persistence, no real authentication, JSON only.
//
//   node server.js --port 8090 [--host 127.0.0.1] [--ping-interval-ms 25000]
//
// It speaks just enough of protocol/PROTOCOL.md for the harness's chat, idle and burst scenarios.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { WebSocketServer } from 'ws';

const JSON_PROTOCOL = 'anapars.v1.json';
// The hub's defaults: a socket with more than this queued is a slow consumer (close 4008), and
// frames above the hard limit are refused by the WebSocket layer (close 1009).
const OUTBOUND_LIMIT_BYTES = 256 * 1024;
const MAX_FRAME_BYTES = 256 * 1024;
const SESSION_TTL_MS = 30 * 24 * 3600 * 1000;
const AGENT_SESSION_TTL_MS = 12 * 3600 * 1000;

/** Starts the peer; resolves once it listens. `port` 0 picks a free one. */
export function start({ port = 0, host = '127.0.0.1', pingIntervalMs = 25_000 } = {}) {
  const sockets = new Set(); // authenticated sockets, for announcements
  const queueWatchers = new Set();
  const tickets = new Map(); // id -> ticket (with its events and subscribers)
  const agentIds = new Map(); // email -> id, so that one agent keeps one id
  let connections = 0;

  const httpServer = http.createServer((req, res) => {
    route(req, res).catch(() => reply(res, 500, { error: { code: 'internal', message: 'internal error' } }));
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });

  async function route(req, res) {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && (path === '/readyz' || path === '/healthz')) {
      return reply(res, 200, { status: path === '/readyz' ? 'ready' : 'ok' });
    }
    if (req.method === 'GET' && path === '/metrics') {
      // Only the gauge the harness reads, under the hub's name.
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      return res.end(`hub_connections ${connections}\n`);
    }
    if (req.method !== 'POST') return reply(res, 404, { error: { code: 'not_found', message: 'route not found' } });
    const body = await readJson(req);
    if (body === undefined) return reply(res, 400, { error: { code: 'bad_request', message: 'invalid json' } });
    const now = Date.now();
    switch (path) {
      case '/v1/auth/code':
        return reply(res, 202, { expires_in_ms: 300_000, resend_after_ms: 60_000 });
      case '/v1/auth/verify': {
        // Any phone and code: a fresh user, whose id is the token (no lookup on `auth`).
        const userId = randomUUID();
        return reply(res, 200, {
          token: `usr_${userId}`,
          expires_at: now + SESSION_TTL_MS,
          user_id: userId,
          device_id: randomUUID(),
          new_user: true,
        });
      }
      case '/v1/agent/login': {
        const email = String(body.email ?? '');
        if (!agentIds.has(email)) agentIds.set(email, randomUUID());
        const id = agentIds.get(email);
        return reply(res, 200, {
          token: `agt_${id}`,
          expires_at: now + AGENT_SESSION_TTL_MS,
          agent: { id, name: email, email, status: 'away', capacity: 5 },
        });
      }
      case '/v1/admin/announcements': {
        // Any admin token. Encoded once; the same bytes go to every socket in the audience.
        const audience = body.audience ?? 'everyone';
        if (typeof body.text !== 'string' || !body.text.trim() || !['users', 'agents', 'everyone'].includes(audience)) {
          return reply(res, 400, { error: { code: 'bad_request', message: 'text and audience' } });
        }
        const announcementId = randomUUID();
        const frame = encode({ type: 'announcement', announcement_id: announcementId, text: body.text, sent_at: now });
        for (const ws of sockets) {
          if (audience === 'everyone' || (audience === 'agents') === (ws.principal.kind === 'agent')) push(ws, frame);
        }
        return reply(res, 202, { announcement_id: announcementId });
      }
      default:
        return reply(res, 404, { error: { code: 'not_found', message: 'route not found' } });
    }
  }

  httpServer.on('upgrade', (req, socket, head) => {
    const offered = (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (req.url.split('?')[0] !== '/v1/ws' || (offered.length > 0 && !offered.includes(JSON_PROTOCOL))) {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(ws));
  });

  function onSocket(ws) {
    connections += 1;
    ws.principal = null;
    ws.subs = new Set();
    ws.alive = true;
    ws.on('pong', () => {
      ws.alive = true;
    });
    ws.on('message', (data, isBinary) => {
      let frame;
      try {
        frame = JSON.parse(isBinary ? data.toString('utf8') : data);
      } catch {
        return send(ws, { type: 'error', id: null, code: 'bad_request', message: 'invalid json' });
      }
      if (frame === null || typeof frame !== 'object' || !Number.isInteger(frame.id)) {
        return send(ws, { type: 'error', id: null, code: 'bad_request', message: 'missing id' });
      }
      handle(ws, frame);
    });
    ws.on('close', () => {
      connections -= 1;
      sockets.delete(ws);
      queueWatchers.delete(ws);
      for (const t of ws.subs) t.subscribers.delete(ws);
    });
    ws.on('error', () => {});
  }

  function handle(ws, f) {
    const id = f.id;
    const fail = (code, message) => send(ws, { type: 'error', id, code, message });
    if (f.type === 'ping') return send(ws, { type: 'ping.ok', id, server_time: Date.now() });
    if (f.type === 'auth') {
      if (typeof f.token !== 'string' || !f.token) return fail('unauthorized', 'session token is not valid');
      if (ws.principal) return fail('already_authenticated', 'already authenticated');
      const now = Date.now();
      sockets.add(ws);
      if (f.token.startsWith('agt_')) {
        ws.principal = { kind: 'agent', id: f.token.slice(4) };
        const agent = { id: ws.principal.id, name: 'agent', status: 'away', capacity: 5, online: true };
        return send(ws, { type: 'auth.agent.ok', id, agent, session_expires_at: now + AGENT_SESSION_TTL_MS });
      }
      ws.principal = { kind: 'user', id: f.token.startsWith('usr_') ? f.token.slice(4) : f.token };
      return send(ws, {
        type: 'auth.ok',
        id,
        user_id: ws.principal.id,
        device_id: ws.principal.id,
        session_expires_at: now + SESSION_TTL_MS,
      });
    }
    if (!ws.principal) return fail('unauthenticated', 'authenticate first');
    const author = { kind: ws.principal.kind, id: ws.principal.id };
    switch (f.type) {
      case 'ticket.open': {
        if (typeof f.subject !== 'string' || typeof f.body !== 'string' || typeof f.client_msg_id !== 'string') {
          return fail('bad_request', 'invalid `ticket.open` frame');
        }
        const now = Date.now();
        const t = {
          id: randomUUID(),
          user_id: ws.principal.id,
          subject: f.subject.trim(),
          status: 'open',
          agent_id: null,
          created_at: now,
          updated_at: now,
          last_seq: 0,
          events: [],
          subscribers: new Set(),
        };
        tickets.set(t.id, t);
        append(t, { kind: 'opened', author, body: t.subject, at: now });
        append(t, { kind: 'message', author, body: f.body, client_msg_id: f.client_msg_id, at: now });
        send(ws, { type: 'ticket.open.ok', id, ticket: view(t) });
        return updated(t, ws);
      }
      case 'ticket.claim': {
        const t = tickets.get(f.ticket_id);
        if (!t) return fail('not_found', 'ticket not found');
        if (t.status !== 'open') return fail('wrong_state', 'the ticket is already assigned');
        const now = Date.now();
        t.status = 'assigned';
        t.agent_id = ws.principal.id;
        append(t, { kind: 'claimed', author, agent_id: t.agent_id, at: now });
        send(ws, { type: 'ticket.update.ok', id, ticket: view(t) });
        return updated(t, ws);
      }
      case 'ticket.subscribe': {
        const t = tickets.get(f.ticket_id);
        if (!t) return fail('not_found', 'ticket not found');
        const after = f.after_seq ?? 0;
        if (!Number.isInteger(after) || after < 0 || after > t.last_seq) return fail('bad_request', 'after_seq');
        // Missed events first, then live ones: nothing can run between the two in Node.
        for (let seq = after + 1; seq <= t.last_seq; seq += 1) push(ws, t.events[seq - 1]);
        t.subscribers.add(ws);
        ws.subs.add(t);
        return send(ws, { type: 'ticket.subscribe.ok', id, ticket: view(t) });
      }
      case 'ticket.send': {
        const t = tickets.get(f.ticket_id);
        if (!t) return fail('not_found', 'ticket not found');
        if (typeof f.body !== 'string' || !f.body.trim() || typeof f.client_msg_id !== 'string') {
          return fail('bad_request', 'invalid `ticket.send` frame');
        }
        const seq = append(t, { kind: 'message', author, body: f.body, client_msg_id: f.client_msg_id, at: Date.now() });
        send(ws, { type: 'ticket.send.ok', id, ticket_id: t.id, seq, duplicate: false });
        return updated(t, ws);
      }
      case 'queue.subscribe':
        if (ws.principal.kind !== 'agent') return fail('forbidden', 'agents only');
        queueWatchers.add(ws);
        return send(ws, { type: 'queue.subscribe.ok', id, tickets: [] });
      default:
        return fail('unknown_type', `unknown type: ${String(f.type).slice(0, 40)}`);
    }
  }

  /** Stores an event (in memory) and pushes it, encoded once, to the ticket's subscribers. */
  function append(t, event) {
    t.last_seq += 1;
    t.updated_at = event.at;
    const frame = encode({ type: 'ticket.event', event: { ticket_id: t.id, seq: t.last_seq, ...event } });
    t.events.push(frame);
    for (const ws of t.subscribers) push(ws, frame);
    return t.last_seq;
  }

  /** `ticket.updated` to the subscribers, the queue watchers and the acting socket, once each. */
  function updated(t, actor) {
    const frame = encode({ type: 'ticket.updated', ticket: view(t) });
    for (const ws of t.subscribers) push(ws, frame);
    for (const ws of queueWatchers) if (!t.subscribers.has(ws)) push(ws, frame);
    if (!t.subscribers.has(actor) && !queueWatchers.has(actor)) push(actor, frame);
  }

  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      if (!ws.alive) {
        ws.terminate();
        continue;
      }
      ws.alive = false;
      ws.ping();
    }
  }, pingIntervalMs);
  pinger.unref();

  return new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, host, () => {
      const address = httpServer.address();
      resolve({
        port: address.port,
        host,
        close: () =>
          new Promise((done) => {
            clearInterval(pinger);
            for (const ws of wss.clients) ws.terminate();
            httpServer.close(() => done());
            httpServer.closeAllConnections();
          }),
      });
    });
  });
}

function view(t) {
  const { id, user_id, subject, status, agent_id, created_at, updated_at, last_seq } = t;
  return { id, user_id, subject, status, agent_id, created_at, updated_at, last_seq };
}

function encode(value) {
  return Buffer.from(JSON.stringify(value));
}

/** Queues pre-encoded bytes as a text frame; a socket that cannot keep up is closed (4008). */
function push(ws, frame) {
  if (ws.readyState !== 1) return;
  if (ws.bufferedAmount > OUTBOUND_LIMIT_BYTES) {
    ws.close(4008, 'slow consumer');
    return;
  }
  ws.send(frame, { binary: false });
}

function send(ws, value) {
  push(ws, encode(value));
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= 16 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      if (size > 16 * 1024) return resolve(undefined);
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        const value = text ? JSON.parse(text) : {};
        resolve(value !== null && typeof value === 'object' ? value : undefined);
      } catch {
        resolve(undefined);
      }
    });
    req.on('error', () => resolve(undefined));
  });
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 1) {
    const value = argv[i + 1];
    if (argv[i] === '--port') opts.port = Number(value);
    else if (argv[i] === '--host') opts.host = value;
    else if (argv[i] === '--ping-interval-ms') opts.pingIntervalMs = Number(value);
    else {
      console.error(`usage: node server.js --port P [--host 127.0.0.1] [--ping-interval-ms 25000]`);
      process.exit(2);
    }
    i += 1;
  }
  return opts;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const peer = await start(parseArgs(process.argv.slice(2)));
  console.log(`anapars-peer-node listening on http://${peer.host}:${peer.port}`);
  const stop = () => peer.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
