#!/usr/bin/env python3
"""Tiny Chrome DevTools Protocol client for record/novnc.sh.

usage: novnc-cdp.py PORT state            print noVNC's status text
       novnc-cdp.py PORT disconnect       click noVNC's own Disconnect button
                                          (UI.disconnect: rfb.disconnect(),
                                          reconnect inhibited)
       novnc-cdp.py PORT close            close the tab (Page.close)

Talks to the first "page" target of the headless Chromium the script
started with --remote-debugging-port=PORT (needs websocket-client).
"""
import json
import sys
import urllib.request

import websocket


def page(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
        targets = json.load(r)
    for t in targets:
        if t.get("type") == "page":
            return t
    raise SystemExit("no page target")


def call(ws, mid, method, params=None):
    ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("id") == mid:
            return msg


def evaluate(ws, expr):
    r = call(ws, 1, "Runtime.evaluate", {"expression": expr, "returnByValue": True})
    return r.get("result", {}).get("result", {}).get("value")


def main():
    port, cmd = sys.argv[1], sys.argv[2]
    t = page(port)
    ws = websocket.create_connection(t["webSocketDebuggerUrl"], timeout=5,
                                     suppress_origin=True)
    if cmd == "state":
        print(evaluate(ws, "(document.getElementById('noVNC_status')||{}).textContent"
                           " + ' | ' + document.documentElement.className"))
    elif cmd == "disconnect":
        print(evaluate(ws, "document.getElementById('noVNC_disconnect_button').click(); 'clicked'"))
    elif cmd == "close":
        ws.send(json.dumps({"id": 1, "method": "Page.close", "params": {}}))
        print("closed")
    else:
        raise SystemExit(f"unknown command {cmd}")
    ws.close()


if __name__ == "__main__":
    main()
