#!/usr/bin/env python3
"""Tiny Chrome DevTools Protocol client for novnc-wss.sh.

usage: cdp.py PORT state        print noVNC's status text and <html> classes
       cdp.py PORT disconnect   click noVNC's Disconnect button (rfb.disconnect())
Needs the websocket-client module.
"""
import json
import sys
import urllib.request

import websocket


def main():
    port, cmd = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
        page = next(t for t in json.load(r) if t.get("type") == "page")
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=5, suppress_origin=True)
    expr = {
        "state": "(document.getElementById('noVNC_status')||{}).textContent"
                 " + ' | ' + document.documentElement.className",
        "disconnect": "document.getElementById('noVNC_disconnect_button').click(); 'clicked'",
    }[cmd]
    ws.send(json.dumps({"id": 1, "method": "Runtime.evaluate",
                        "params": {"expression": expr, "returnByValue": True}}))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("id") == 1:
            print(msg.get("result", {}).get("result", {}).get("value"))
            break
    ws.close()


if __name__ == "__main__":
    main()
