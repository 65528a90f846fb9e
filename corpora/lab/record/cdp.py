#!/usr/bin/env python3
"""Tiny DevTools client for the lab scripts (a recording tool, not project code).

  cdp.py PORT navigate URL   navigates the first page target to URL
  cdp.py PORT close          closes the first page target (Target.closeTarget)
  cdp.py PORT eval EXPR      prints the value of EXPR in the page

Uses the `websockets` library's sync client on the DevTools socket.
"""
import json
import sys
import urllib.request

from websockets.sync.client import connect


def main():
    port, cmd = sys.argv[1], sys.argv[2]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = next(t for t in targets if t["type"] == "page")
    if cmd == "close":
        version = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version"))
        url, method = version["webSocketDebuggerUrl"], "Target.closeTarget"
        params = {"targetId": page["id"]}
    elif cmd == "navigate":
        url, method, params = page["webSocketDebuggerUrl"], "Page.navigate", {"url": sys.argv[3]}
    else:
        url, method = page["webSocketDebuggerUrl"], "Runtime.evaluate"
        params = {"expression": sys.argv[3], "returnByValue": True}
    with connect(url, max_size=None) as ws:
        ws.send(json.dumps({"id": 1, "method": method, "params": params}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("id") == 1:
                print(json.dumps(msg.get("result", msg))[:2000])
                break


if __name__ == "__main__":
    main()
