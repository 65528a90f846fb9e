#!/usr/bin/env node
// Node.js `ws` peers for ws2.sh (a recording tool, not project code).
// Needs the npm package ws (NODE_PATH pointing at a node_modules holding it).
//
//   ws2-peers.js server PORT [--heartbeat S]
//       Listens on 127.0.0.1:PORT and echoes every message. --heartbeat S is
//       the heartbeat pattern of ws's README: every S s, a client that has not
//       answered the previous ping is terminate()d, the others are pinged.
//       SIGUSR1: close every client with 1001 "going away"; the server keeps
//       running (and listening).
//   ws2-peers.js client URL [--every S] [--reconnect S]
//       Connects, sends "msg N" every S s (silent without --every); SIGUSR1
//       closes with 1000 "bye". --reconnect S: S s after the connection
//       closes or a connect fails, connect again (forever).
// Both print what happened (close codes, client ports) with epoch times.
'use strict';
const WebSocket = require('ws');

const T0 = Date.now() / 1000;
function log(who, msg) {
  const t = Date.now() / 1000;
  console.log(`[${t.toFixed(3)} +${(t - T0).toFixed(3).padStart(7)}] ${who}: ${msg}`);
}
function opt(name, def) {
  const i = process.argv.indexOf(name);
  return i < 0 ? def : parseFloat(process.argv[i + 1]);
}

const role = process.argv[2];
const where = process.argv[3];

if (role === 'server') {
  const hb = opt('--heartbeat', 0);
  const wss = new WebSocket.WebSocketServer({ host: '127.0.0.1', port: parseInt(where, 10) });
  wss.on('listening', () => log('server', `listening on 127.0.0.1:${where} heartbeat=${hb}`));
  wss.on('connection', (ws, req) => {
    const port = req.socket.remotePort;
    ws.isAlive = true;
    ws.port = port;
    log('server', `session from port ${port}`);
    ws.on('pong', () => { ws.isAlive = true; });
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', (e) => log('server', `port ${port} error: ${e.message}`));
    ws.on('close', (code, reason) => log('server', `session from port ${port} closed: code=${code} reason=${JSON.stringify(reason.toString())}`));
  });
  if (hb > 0) {
    setInterval(() => {
      for (const ws of wss.clients) {
        if (ws.isAlive === false) {
          log('server', `port ${ws.port}: no pong since the last ping: terminate()`);
          ws.terminate();
          continue;
        }
        ws.isAlive = false;
        ws.ping();
      }
    }, hb * 1000);
  }
  process.on('SIGUSR1', () => {
    for (const ws of wss.clients) {
      log('server', `port ${ws.port}: close(1001, "going away")`);
      ws.close(1001, 'going away');
    }
  });
} else if (role === 'client') {
  const every = opt('--every', 0);
  const reconnect = opt('--reconnect', 0);
  let current = null;
  let n = 0;
  let attempt = 0;
  function start() {
    attempt += 1;
    log('client', `attempt ${attempt}: connecting to ${where}`);
    const ws = new WebSocket(where);
    current = ws;
    let timer = null;
    ws.on('open', () => {
      log('client', `attempt ${attempt}: connected from port ${ws._socket.localPort}`);
      if (every > 0) {
        timer = setInterval(() => { n += 1; ws.send(`msg ${n}`); }, every * 1000);
      }
    });
    ws.on('message', () => {});
    ws.on('error', (e) => log('client', `attempt ${attempt}: error: ${e.message}`));
    ws.on('close', (code, reason) => {
      if (timer) clearInterval(timer);
      log('client', `attempt ${attempt}: closed: code=${code} reason=${JSON.stringify(reason.toString())}`);
      current = null;
      if (reconnect > 0 && !process.exitRequested) {
        setTimeout(start, reconnect * 1000);
      } else {
        process.exit(0);
      }
    });
  }
  process.on('SIGUSR1', () => {
    process.exitRequested = true;
    if (current) {
      log('client', 'closing with 1000 bye');
      current.close(1000, 'bye');
    }
  });
  start();
} else {
  console.error('usage: ws2-peers.js server PORT [--heartbeat S] | client URL [--every S] [--reconnect S]');
  process.exit(2);
}
