/**
 * The comparison server: Socket.IO (npm `socket.io`) doing what the benchmark asks of Subsecond's channel,
 * in the way Socket.IO's documentation does broadcasts. Each subscriber joins the room its handshake names
 * (`?channel=`); a publisher emits `publish` and the server stamps the message like Subsecond does (`id`
 * strictly increasing per channel, server `time`, `from` the publisher's socket id) and broadcasts it to
 * the room with `io.to(channel).emit` — encoded once by Socket.IO's adapter, written to every socket.
 * Websocket transport only (no long-polling upgrade), permessage-deflate off, as Subsecond's sockets are.
 * No history, presence, rate limits or authorization: this is the lighter job.
 *
 * With a Redis URL it is one node of several: `@socket.io/redis-adapter` (Redis pub/sub, ioredis clients)
 * carries each broadcast to the other nodes, as Socket.IO's documentation sets up multiple nodes. The ids
 * stay this node's counter (the benchmark publishes on one node only): the adapter has no ids, history or
 * recovery across nodes.
 *
 *   node bench/messaging/socketio-server.ts PORT [REDIS_URL]
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0)
  throw new Error(`usage: socketio-server.ts PORT (got "${process.argv[2]}")`);

const http = createServer((request, response) => {
  response.writeHead(request.url === '/healthz' ? 200 : 404).end();
});
const redisUrl = process.argv[3];
const adapter = redisUrl
  ? (() => {
      const pub = new Redis(redisUrl);
      return createAdapter(pub, pub.duplicate());
    })()
  : undefined;
const server = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
  ...(adapter ? { adapter } : {}),
});
const nextId = new Map<string, number>();

server.on('connection', (socket) => {
  const channel = socket.handshake.query.channel;
  if (typeof channel === 'string' && channel !== '') {
    socket.join(channel);
    socket.emit('joined', channel);
  }
  socket.on('publish', (draft: { channel?: unknown; type?: unknown; data?: unknown }) => {
    if (typeof draft?.channel !== 'string' || typeof draft.type !== 'string') return;
    const id = (nextId.get(draft.channel) ?? 0) + 1;
    nextId.set(draft.channel, id);
    server.to(draft.channel).emit('message', {
      id,
      channel: draft.channel,
      time: Date.now(),
      from: socket.id,
      type: draft.type,
      data: draft.data,
    });
  });
});

http.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
